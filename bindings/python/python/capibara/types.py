"""The shapes of what Capibara takes and returns: plain dicts, typed here for checkers and
editors. Results are the same documents the HTTP API returns for the same call."""

from __future__ import annotations

from os import PathLike
from typing import Any, Literal, NotRequired, TypedDict, Union

#: A configuration: a path to a ``capibara.toml``, or a dict laid out like one.
Config = Union[str, PathLike[str], dict[str, Any]]

#: What ``ingest`` reads: a file or directory, or a list of them.
Paths = Union[str, PathLike[str], list[Union[str, PathLike[str]]]]

#: How a search runs: mini (fast, cached), full (expanded), guided (mini, escalating to full),
#: lexical (BM25), dense (vectors) or hybrid (both, fused).
Mode = Literal["mini", "full", "guided", "lexical", "dense", "hybrid"]

#: A metadata filter: ``{"eq": {"field": "tema", "value": "animales"}}``, ``{"in": {"field", "values"}}``,
#: ``{"range": {"field", "gte", "lte"}}``, ``{"and": [...]}``, ``{"or": [...]}``, ``{"not": {...}}``.
Filter = dict[str, Any]


class ToolCall(TypedDict):
    id: str
    name: str
    arguments: str


class Message(TypedDict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str
    tool_calls: NotRequired[list[ToolCall]]
    tool_call_id: NotRequired[str]


class ChatOptions(TypedDict, total=False):
    model: str
    temperature: float
    top_p: float
    top_k: int
    max_tokens: int
    stop: list[str]
    seed: int
    repeat_penalty: float
    presence_penalty: float
    frequency_penalty: float


class Usage(TypedDict):
    prompt_tokens: int
    completion_tokens: int


class ChatAnswer(TypedDict):
    model: str
    backend: str
    content: str
    reasoning: NotRequired[str]
    tool_calls: NotRequired[list[ToolCall]]
    usage: NotRequired[Usage]
    finish_reason: str


class ContentEvent(TypedDict):
    type: Literal["content"]
    delta: str


class ReasoningEvent(TypedDict):
    type: Literal["reasoning"]
    delta: str


class ToolCallEvent(TypedDict):
    type: Literal["tool_call"]
    call: ToolCall


class UsageEvent(TypedDict):
    type: Literal["usage"]
    usage: Usage


class DoneEvent(TypedDict):
    type: Literal["done"]
    finish_reason: str


#: One event of a streamed answer; content and reasoning are never mixed.
ChatEvent = Union[ContentEvent, ReasoningEvent, ToolCallEvent, UsageEvent, DoneEvent]


class Source(TypedDict):
    n: int
    id: str
    text: str
    score: float
    lexical_score: NotRequired[float]
    dense_score: NotRequired[float]
    source: NotRequired[str]
    title: NotRequired[str]
    metadata: dict[str, Any]


class Retrieval(TypedDict):
    mode: Mode
    depth: NotRequired[Literal["mini", "full"]]
    partial: bool
    cached: bool
    escalation: NotRequired[list[Any]]
    took_ms: float


class SearchResults(Retrieval):
    query: str
    total_results: int
    results: list[Source]


class AskOptions(TypedDict, total=False):
    mode: Mode
    filter: Filter
    model: str
    max_tokens: int
    temperature: float
    conversation_id: str
    email: str


class RagAnswer(TypedDict):
    query: str
    answer: str
    sources: list[Source]
    retrieval: Retrieval
    model: str
    conversation_id: str
    usage: NotRequired[Usage]
    processing_time_ms: int
    timestamp: str


class Document(TypedDict):
    text: str
    id: NotRequired[str]
    title: NotRequired[str]
    source: NotRequired[str]
    metadata: NotRequired[dict[str, Any]]


class IngestFailure(TypedDict):
    source: str
    code: str
    error: str


class IngestSummary(TypedDict):
    files: int
    documents: int
    unchanged_documents: int
    chunks_indexed: int
    chunks_removed: int
    failures: list[IngestFailure]
    seconds: float


class RetrievalStats(TypedDict):
    collection: str
    documents: int
    indexed_documents: int
    chunks: int
    vectors: int
    embedding_model: str


class IngestEvent(TypedDict, total=False):
    type: Literal["discovered", "file_loaded", "file_failed", "indexed"]
    files: int
    bytes: int
    source: str
    error: str
    chunks: int

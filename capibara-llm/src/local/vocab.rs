//! The tokenizer, rebuilt from GGUF metadata (`tokenizer.ggml.*`) with the `tokenizers` crate.
//!
//! Only byte-level BPE vocabularies (`tokenizer.ggml.model = gpt2`) are supported. The
//! pre-tokenizer follows `tokenizer.ggml.pre` the way llama.cpp does; control and user-defined
//! tokens (`<|im_start|>`, …) become added tokens, so markup in a rendered chat template encodes
//! as single tokens. Decoding does not go through `tokenizers`: every token's bytes are computed
//! once at load, so a generated token costs one table lookup.

use std::collections::HashMap;

use capibara_core::{Error, Result};
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use super::gguf::GgufFile;

/// llama.cpp's `LLAMA_TOKEN_TYPE_CONTROL`.
const TYPE_CONTROL: u32 = 3;
/// llama.cpp's `LLAMA_TOKEN_TYPE_USER_DEFINED`.
const TYPE_USER_DEFINED: u32 = 4;

/// Pre-tokenizer regex of Llama 3 style vocabularies (digits in groups of up to three).
const REGEX_LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Pre-tokenizer regex of Qwen 2 vocabularies (single digits).
const REGEX_QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Values of `tokenizer.ggml.pre` this module knows how to pre-tokenize.
pub const SUPPORTED_PRE_TOKENIZERS: &[&str] =
    &["default", "gpt2", "smollm", "starcoder", "refact", "llama-bpe", "llama3", "smaug-bpe", "qwen2"];

/// Text names of tokens that end a turn in common vocabularies (llama.cpp treats them the same).
const END_OF_TURN_TEXTS: &[&str] = &[
    "<|endoftext|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<end_of_turn>",
    "<|end|>",
    "</s>",
    "<|eom_id|>",
];

/// The tokenizer and the special ids of one vocabulary.
#[derive(Debug, Clone)]
pub(crate) struct Vocab {
    pub(crate) tokenizer: Tokenizer,
    /// Bytes each token decodes to (empty for control tokens, which are never shown).
    pieces: Vec<Vec<u8>>,
    /// Text of every token as written in the vocabulary.
    texts: Vec<String>,
    pub(crate) bos: Option<u32>,
    pub(crate) eos: Option<u32>,
    pub(crate) padding: Option<u32>,
    /// Prepend `bos` to every prompt (`tokenizer.ggml.add_bos_token`).
    pub(crate) add_bos: bool,
    /// Tokens that end generation.
    end_of_generation: Vec<u32>,
}

impl Vocab {
    /// Rebuilds the tokenizer of `gguf`.
    pub(crate) fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let shown = gguf.path.display();
        let model = gguf.string("tokenizer.ggml.model").unwrap_or_default();
        if model != "gpt2" {
            return Err(Error::invalid(format!(
                "model file {shown}: tokenizer `{model}` is not supported (supported: gpt2 byte-level BPE)"
            )));
        }
        let tokens = gguf.strings("tokenizer.ggml.tokens")?;
        let merges =
            gguf.strings("tokenizer.ggml.merges")?
                .into_iter()
                .map(|merge| {
                    merge.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned())).ok_or_else(|| {
                        Error::invalid(format!("model file {shown}: malformed merge `{merge}`"))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
        let types = gguf.integers("tokenizer.ggml.token_type").unwrap_or_else(|| vec![1; tokens.len()]);
        if types.len() != tokens.len() {
            return Err(Error::invalid(format!(
                "model file {shown}: {} token types for {} tokens",
                types.len(),
                tokens.len()
            )));
        }
        let vocab: tokenizers::models::bpe::Vocab =
            tokens.iter().zip(0u32..).map(|(t, id)| ((*t).to_owned(), id)).collect();
        let bpe = BPE::builder().vocab_and_merges(vocab, merges).build().map_err(|e| {
            Error::invalid(format!("model file {shown}: cannot build the BPE tokenizer: {e}"))
        })?;
        let mut tokenizer = Tokenizer::new(bpe);
        let pre = gguf.string("tokenizer.ggml.pre").unwrap_or_else(|| "default".to_owned());
        tokenizer.with_pre_tokenizer(Some(
            pre_tokenizer(&pre).map_err(|e| e.context(&format!("model file {shown}")))?,
        ));
        tokenizer.with_decoder(Some(tokenizers::decoders::byte_level::ByteLevel::default()));

        // Control tokens are special (never split, never shown); user-defined ones are ordinary
        // added tokens: matched whole in text, shown when generated.
        let added = |wanted: u32| -> Vec<AddedToken> {
            tokens
                .iter()
                .zip(&types)
                .filter(|(_, kind)| **kind == wanted)
                .map(|(text, _)| {
                    AddedToken::from((*text).to_owned(), wanted == TYPE_CONTROL).normalized(false)
                })
                .collect()
        };
        let tokenizer_error = |e: tokenizers::Error| Error::internal(format!("tokenizer: {e}"));
        tokenizer.add_special_tokens(added(TYPE_CONTROL)).map_err(tokenizer_error)?;
        tokenizer.add_tokens(added(TYPE_USER_DEFINED)).map_err(tokenizer_error)?;

        let unicode_to_byte = unicode_to_byte();
        let pieces = tokens
            .iter()
            .zip(&types)
            .map(|(text, kind)| match *kind {
                TYPE_CONTROL => Vec::new(),
                TYPE_USER_DEFINED => text.as_bytes().to_vec(),
                _ => byte_level_bytes(text, &unicode_to_byte),
            })
            .collect();
        let texts: Vec<String> = tokens.iter().map(|t| (*t).to_owned()).collect();
        let id = |key: &str| gguf.u32(key).filter(|&id| (id as usize) < texts.len());
        let bos = id("tokenizer.ggml.bos_token_id");
        let eos = id("tokenizer.ggml.eos_token_id");
        let padding = id("tokenizer.ggml.padding_token_id");
        let mut end_of_generation: Vec<u32> =
            [eos, id("tokenizer.ggml.eot_token_id"), id("tokenizer.ggml.eom_token_id")]
                .into_iter()
                .flatten()
                .collect();
        for (token, (text, kind)) in (0u32..).zip(texts.iter().zip(&types)) {
            if *kind == TYPE_CONTROL && END_OF_TURN_TEXTS.contains(&text.as_str()) {
                end_of_generation.push(token);
            }
        }
        end_of_generation.sort_unstable();
        end_of_generation.dedup();
        Ok(Self {
            tokenizer,
            pieces,
            texts,
            bos,
            eos,
            padding,
            add_bos: gguf.bool("tokenizer.ggml.add_bos_token").unwrap_or(false),
            end_of_generation,
        })
    }

    /// Encodes `text`, reading control-token markup (`<|im_start|>`) as the tokens themselves.
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| Error::internal(format!("tokenizer: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Encodes a rendered prompt, adding the BOS token when the vocabulary asks for it and the
    /// template did not already write it.
    pub(crate) fn encode_prompt(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.encode(text)?;
        if self.add_bos
            && let Some(bos) = self.bos
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// The bytes `token` contributes to the answer (empty for control tokens).
    pub(crate) fn piece(&self, token: u32) -> &[u8] {
        self.pieces.get(token as usize).map_or(&[], Vec::as_slice)
    }

    /// The token's text as written in the vocabulary (`<|im_end|>`, `Ġthe`).
    pub(crate) fn text(&self, token: u32) -> Option<&str> {
        self.texts.get(token as usize).map(String::as_str)
    }

    /// Whether `token` ends the answer.
    pub(crate) fn ends_generation(&self, token: u32) -> bool {
        self.end_of_generation.binary_search(&token).is_ok()
    }

    /// Number of tokens.
    pub(crate) fn len(&self) -> usize {
        self.texts.len()
    }
}

fn pre_tokenizer(pre: &str) -> Result<PreTokenizerWrapper> {
    let split = |regex: &str| -> Result<PreTokenizerWrapper> {
        let split =
            Split::new(SplitPattern::Regex(regex.to_owned()), SplitDelimiterBehavior::Isolated, false)
                .map_err(|e| Error::internal(format!("pre-tokenizer regex: {e}")))?;
        Ok(Sequence::new(vec![split.into(), ByteLevel::new(false, false, false).into()]).into())
    };
    match pre {
        // GPT-2's regex (inside ByteLevel).
        "default" | "gpt2" => Ok(ByteLevel::new(false, true, true).into()),
        // Every digit apart, then GPT-2's regex.
        "smollm" | "starcoder" | "refact" => {
            Ok(Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()]).into())
        }
        "llama-bpe" | "llama3" | "smaug-bpe" => split(REGEX_LLAMA3),
        "qwen2" => split(REGEX_QWEN2),
        other => Err(Error::invalid(format!(
            "pre-tokenizer `{other}` is not supported (supported: {})",
            SUPPORTED_PRE_TOKENIZERS.join(", ")
        ))),
    }
}

/// GPT-2's byte-level alphabet, reversed: the printable stand-in character of each byte → byte.
fn unicode_to_byte() -> HashMap<char, u8> {
    let mut map = HashMap::with_capacity(256);
    let mut next = 0u32;
    for byte in 0..=255u8 {
        let printable = matches!(byte, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let code = if printable {
            u32::from(byte)
        } else {
            next += 1;
            255 + next
        };
        if let Some(ch) = char::from_u32(code) {
            map.insert(ch, byte);
        }
    }
    map
}

/// The raw bytes of a byte-level token; characters outside the alphabet are kept as UTF-8.
fn byte_level_bytes(text: &str, map: &HashMap<char, u8>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len());
    for ch in text.chars() {
        match map.get(&ch) {
            Some(&byte) => bytes.push(byte),
            None => bytes.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_level_alphabet_round_trips() {
        let map = unicode_to_byte();
        assert_eq!(map.len(), 256);
        assert_eq!(byte_level_bytes("Ġhola", &map), b" hola");
        assert_eq!(byte_level_bytes("Ċ", &map), b"\n");
        // "ñ" is two bytes, C3 B1, each written as its own stand-in character.
        assert_eq!(byte_level_bytes("Ã±", &map), "ñ".as_bytes());
    }

    #[test]
    fn unknown_pre_tokenizers_are_named() {
        let error = pre_tokenizer("mystery").unwrap_err().to_string();
        assert!(error.contains("mystery") && error.contains("smollm"), "{error}");
    }
}

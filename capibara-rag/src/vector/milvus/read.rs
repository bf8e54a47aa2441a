//! The reads of [`MilvusStore`]: search (one query or many), get by id, count, and the check that
//! a filter names known fields.

use std::collections::{HashMap, HashSet};

use capibara_core::vector::{ScoredRecord, VectorQuery, VectorRecord};
use capibara_core::{Error, Result};
use milvus::v2::prelude::*;

use super::MilvusStore;
use super::errors::{map, timed};
use super::expr::{ID_FIELD, exists_expr, filter_expr, ids_expr};
use super::records::{self, OUTPUT_FIELDS};
use super::schema::VECTOR_FIELD;
use super::store::{ANSWER_LIMIT, Collection, IDS_PER_REQUEST};
use crate::vector::MAX_QUERIES;
use crate::vector::store::check_batch;

/// The most hits (queries × k) asked of the server in one search request.
const MAX_HITS_PER_REQUEST: usize = 1024;

/// The name Milvus gives the row count column.
const COUNT_FIELD: &str = "count(*)";

/// A validated query as the server is asked it.
struct Planned<'a> {
    query: &'a VectorQuery,
    /// The filter expression; `None` when the filter names a field no record carries and the
    /// collection is empty, so that the answer is known to be empty.
    expr: Option<String>,
}

impl MilvusStore {
    fn query_request(&self, collection: &Collection, filter: String) -> QueryRequestBuilder {
        QueryRequest::builder()
            .collection_name(collection.name.as_str())
            .filter(filter)
            .consistency_level(collection.read_level(self.inner.config.consistency))
    }

    /// Whether some record matches `filter` (an expression; empty for any record).
    async fn any_row(&self, collection: &Collection, filter: String) -> Result<bool> {
        let request =
            self.query_request(collection, filter).output_fields([ID_FIELD]).limit(1).build().map_err(map)?;
        let response = timed(self.timeout(), "query", self.inner.client.query(request)).await?;
        Ok(response.results().get_row_count() > 0)
    }

    /// Checks the query and writes its expression. A field unknown to this store is looked up on
    /// the server (`exists metadata["field"]`); when no record carries it the filter is refused,
    /// unless the collection is empty (then every valid query has no hits, as in every store).
    async fn plan<'a>(&self, collection: &Collection, query: &'a VectorQuery) -> Result<Planned<'a>> {
        query.validate(collection.dimension)?;
        let Some(filter) = &query.filter else { return Ok(Planned { query, expr: Some(String::new()) }) };
        let expr = filter_expr(filter)?;
        for field in filter.fields() {
            if collection.knows_field(field) {
                continue;
            }
            if self.any_row(collection, exists_expr(field)).await? {
                collection.learn_fields([field]);
            } else if self.any_row(collection, String::new()).await? {
                return Err(Error::invalid(format!(
                    "unknown filter field '{field}' in collection '{}' (no record carries it)",
                    collection.name
                )));
            } else {
                return Ok(Planned { query, expr: None });
            }
        }
        Ok(Planned { query, expr: Some(expr) })
    }

    fn search_request(
        &self,
        collection: &Collection,
        queries: &[&Planned<'_>],
        outputs: &[&str],
    ) -> Result<SearchRequest> {
        let first = queries.first().ok_or_else(|| Error::internal("a search without queries"))?;
        SearchRequest::builder()
            .collection_name(collection.name.as_str())
            .vector_field(VECTOR_FIELD)
            .vectors(SearchVectors::Float(queries.iter().map(|p| p.query.vector.clone()).collect()))
            .filter(first.expr.clone().unwrap_or_default())
            .limit(first.query.k as i64)
            .metric_type(MetricType::Ip)
            .extra_params(collection.index.search_params(first.query.k))
            .output_fields(outputs.iter().copied())
            .consistency_level(collection.read_level(self.inner.config.consistency))
            .build()
            .map_err(map)
    }

    /// Queries sharing `k` and filter, asked in one request; or, when their records could
    /// make the answer too large for the client, each asked for ids and then fetched.
    async fn search_group(
        &self,
        collection: &Collection,
        group: &[&Planned<'_>],
    ) -> Result<Vec<Vec<ScoredRecord>>> {
        let hits = group.iter().map(|p| p.query.k).sum::<usize>();
        if hits <= collection.records_per_answer() {
            let request = self.search_request(collection, group, &OUTPUT_FIELDS)?;
            match timed(self.timeout(), "search", self.inner.client.search(request)).await {
                Ok(response) => {
                    let results = response.results().get_results();
                    if results.len() != group.len() {
                        return Err(Error::upstream(
                            502,
                            "Milvus answered a search with another number of queries",
                        ));
                    }
                    let answers: Vec<Vec<ScoredRecord>> =
                        results.iter().map(records::from_search).collect::<Result<_>>()?;
                    let hits = answers.iter().flatten().map(|hit| &hit.record);
                    collection.note_record_bytes(records::largest(hits));
                    return Ok(answers);
                }
                Err(Error::TooLarge(_)) => collection.note_record_bytes(ANSWER_LIMIT / hits + 1),
                Err(error) => return Err(error),
            }
        }
        let mut answers = Vec::with_capacity(group.len());
        for planned in group {
            answers.push(self.search_then_fetch(collection, planned).await?);
        }
        Ok(answers)
    }

    async fn search_then_fetch(
        &self,
        collection: &Collection,
        planned: &Planned<'_>,
    ) -> Result<Vec<ScoredRecord>> {
        let request = self.search_request(collection, &[planned], &[])?;
        let response = timed(self.timeout(), "search", self.inner.client.search(request)).await?;
        let Some(result) = response.results().get_results().first() else { return Ok(Vec::new()) };
        let ids = records::hit_ids(result)?;
        let mut found: HashMap<String, VectorRecord> =
            self.fetch(collection, ids).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
        // A hit deleted between the two requests is left out.
        Ok(ids
            .iter()
            .zip(result.get_scores())
            .filter_map(|(id, score)| found.remove(id).map(|record| ScoredRecord { record, score: *score }))
            .collect())
    }

    pub(super) async fn search_one(
        &self,
        collection: &Collection,
        query: &VectorQuery,
    ) -> Result<Vec<ScoredRecord>> {
        let planned = self.plan(collection, query).await.map_err(|e| e.context(&collection.context()))?;
        if planned.expr.is_none() {
            return Ok(Vec::new());
        }
        Ok(self.search_group(collection, &[&planned]).await?.pop().unwrap_or_default())
    }

    /// Every query is checked first; then queries with the same `k` and filter share requests of
    /// at most [`MAX_HITS_PER_REQUEST`] hits.
    pub(super) async fn search_batch(
        &self,
        collection: &Collection,
        queries: &[VectorQuery],
    ) -> Result<Vec<Vec<ScoredRecord>>> {
        check_batch("queries", queries.len(), MAX_QUERIES)?;
        let mut planned = Vec::with_capacity(queries.len());
        for (i, query) in queries.iter().enumerate() {
            let context = format!("{}, query {i}", collection.context());
            planned.push(self.plan(collection, query).await.map_err(|e| e.context(&context))?);
        }
        let mut groups: HashMap<(usize, &str), Vec<usize>> = HashMap::new();
        for (i, p) in planned.iter().enumerate() {
            if let Some(expr) = &p.expr {
                groups.entry((p.query.k, expr.as_str())).or_default().push(i);
            }
        }
        let mut answers = vec![Vec::new(); queries.len()];
        for ((k, _), members) in groups {
            let hits = MAX_HITS_PER_REQUEST.min(collection.records_per_answer());
            for chunk in members.chunks((hits / k).max(1)) {
                let group: Vec<&Planned<'_>> = chunk.iter().map(|i| &planned[*i]).collect();
                for (i, hits) in chunk.iter().zip(self.search_group(collection, &group).await?) {
                    answers[*i] = hits;
                }
            }
        }
        Ok(answers)
    }

    /// The records of `ids` (each once, in the order asked; missing ones left out), asked
    /// [`IDS_PER_REQUEST`] at a time or fewer, as many as fit an answer, in smaller pieces when
    /// an answer is over the client's limit all the same.
    pub(super) async fn fetch(&self, collection: &Collection, ids: &[String]) -> Result<Vec<VectorRecord>> {
        check_batch("ids", ids.len(), crate::vector::MAX_BATCH)?;
        let mut seen = HashSet::with_capacity(ids.len());
        let unique: Vec<&str> = ids.iter().map(String::as_str).filter(|id| seen.insert(*id)).collect();
        let mut found: HashMap<String, VectorRecord> = HashMap::with_capacity(unique.len());
        let per_request = IDS_PER_REQUEST.min(collection.records_per_answer());
        let mut pending: Vec<&[&str]> = unique.chunks(per_request).rev().collect();
        while let Some(chunk) = pending.pop() {
            let request = self
                .query_request(collection, ids_expr(chunk.iter().copied()))
                .output_fields(OUTPUT_FIELDS)
                .build()
                .map_err(map)?;
            match timed(self.timeout(), "query", self.inner.client.query(request)).await {
                Ok(response) => {
                    let records = records::from_query(response.results())?;
                    collection.note_record_bytes(records::largest(&records));
                    found.extend(records.into_iter().map(|r| (r.id.clone(), r)));
                }
                Err(Error::TooLarge(_)) if chunk.len() > 1 => {
                    collection.note_record_bytes(ANSWER_LIMIT / chunk.len() + 1);
                    let (first, second) = chunk.split_at(chunk.len() / 2);
                    pending.extend([second, first]);
                }
                Err(error) => return Err(error),
            }
        }
        Ok(unique.into_iter().filter_map(|id| found.remove(id)).collect())
    }

    pub(super) async fn count_rows(&self, collection: &Collection) -> Result<u64> {
        let request = self
            .query_request(collection, String::new())
            .output_fields([COUNT_FIELD])
            .build()
            .map_err(map)?;
        let response = timed(self.timeout(), "count", self.inner.client.query(request)).await?;
        match response.results().get_output_field(COUNT_FIELD) {
            Some(FieldData::Int64 { values, .. }) => Ok(values.first().copied().unwrap_or(0).max(0) as u64),
            _ => Err(Error::upstream(502, "Milvus answered a count without a count")),
        }
    }
}

//! Test helpers shared by the retrieval tests.

use std::time::Duration;

use async_trait::async_trait;
use capibara_core::Result;
use capibara_core::embed::Embedder;
use capibara_core::vector::Metadata;

use std::sync::Arc;

use capibara_core::vector::VectorStore;

use super::fusion::Fusion;
use super::hybrid::{HybridIndex, IndexedText};
use crate::lexical::{Analyzer, Language};

/// Feature hashing of lowercased words into 64 dimensions, unit length: similar word sets give
/// similar vectors, which is all these tests need from an embedder. `delay` simulates a slow one.
pub(crate) struct HashingEmbedder {
    pub(crate) delay: Duration,
}

#[async_trait]
impl Embedder for HashingEmbedder {
    fn model_id(&self) -> &str {
        "hashing-64"
    }
    fn dimension(&self) -> usize {
        64
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(texts
            .iter()
            .map(|text| {
                let mut vector = vec![0.0f32; 64];
                for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
                    let hash = word
                        .to_lowercase()
                        .bytes()
                        .fold(2_166_136_261u32, |h, b| (h ^ u32::from(b)).wrapping_mul(16_777_619));
                    vector[(hash % 64) as usize] += 1.0;
                }
                let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-6);
                vector.iter_mut().for_each(|v| *v /= norm);
                vector
            })
            .collect())
    }
}

pub(crate) fn entry(id: &str, text: &str, metadata: serde_json::Value) -> IndexedText {
    let metadata: Metadata = serde_json::from_value(metadata).unwrap();
    IndexedText { id: id.into(), text: text.into(), metadata }
}

/// A Spanish hybrid index with the default fusion over collection `docs` of `store`.
pub(crate) async fn open_index(embedder: Arc<dyn Embedder>, store: Arc<dyn VectorStore>) -> HybridIndex {
    match HybridIndex::open(embedder, store, "docs", Analyzer::new(Language::Spanish), Fusion::default())
        .await
    {
        Ok(index) => index,
        Err(error) => panic!("opening the test index: {error}"),
    }
}

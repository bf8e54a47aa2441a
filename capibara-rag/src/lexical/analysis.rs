//! Text analysis for lexical retrieval: text in, index terms out.
//!
//! The steps, per token: Unicode lowercase; split on runs of Unicode letters and digits (numbers
//! are kept as tokens; a combining accent written as a separate code point stays with its letter);
//! drop stop words; Snowball stemming; accent folding (`á→a`, `ñ→n`, `ü→u`, `ç→c`, `ß→ss`, …).
//! Where folding happens relative to stemming is [`AccentFolding`].

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use rust_stemmers::{Algorithm, Stemmer};
use serde::{Deserialize, Serialize};

use super::stopwords;

pub use capibara_core::config::Language;

/// Where accent folding happens relative to stemming.
///
/// The Snowball Spanish stemmer reads accents (`-ación`, `-ción`, stressed vowels in its regions),
/// so folding after stemming lets it see the words as written; folding before stemming lets it
/// treat a word typed without accents like the same word with them. Queries and documents are
/// always analysed alike, so both orders are consistent; they differ in which words end up
/// sharing a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccentFolding {
    /// Stem the accented word, then fold the stem (the default).
    #[default]
    AfterStemming,
    /// Fold the word, then stem the folded word.
    BeforeStemming,
    /// Keep accents.
    Off,
}

/// What an [`Analyzer`] does; this is also its serialised form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalyzerConfig {
    /// Stop words and stemmer.
    pub language: Language,
    /// Where accents are folded.
    pub folding: AccentFolding,
    /// Whether the language's stop words are dropped.
    pub stop_words: bool,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        Self { language: Language::default(), folding: AccentFolding::default(), stop_words: true }
    }
}

impl AnalyzerConfig {
    /// The default analysis for `language`: stop words dropped, folding after stemming.
    pub fn for_language(language: Language) -> Self {
        Self { language, ..Self::default() }
    }
}

/// Turns text into index terms; the same analyzer must be used for documents and queries.
///
/// ```
/// use capibara_rag::lexical::{Analyzer, Language};
///
/// let analyzer = Analyzer::new(Language::Spanish);
/// assert_eq!(analyzer.terms("¿Cuántas canciones grabó en 1998?"), ["cuant", "cancion", "grab", "1998"]);
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "AnalyzerConfig", into = "AnalyzerConfig")]
pub struct Analyzer {
    config: AnalyzerConfig,
    stemmer: Option<Arc<Stemmer>>,
    /// Compared with tokens in the same folding state they are in when the test happens.
    stop_words: Arc<HashSet<String>>,
}

impl Analyzer {
    /// The default analysis for `language` (see [`AnalyzerConfig::for_language`]).
    pub fn new(language: Language) -> Self {
        Self::from_config(AnalyzerConfig::for_language(language))
    }

    /// An analyzer doing what `config` says.
    pub fn from_config(config: AnalyzerConfig) -> Self {
        let (algorithm, list) = match config.language {
            Language::Spanish => (Some(Algorithm::Spanish), stopwords::SPANISH),
            Language::English => (Some(Algorithm::English), stopwords::ENGLISH),
            Language::None => (None, &[][..]),
        };
        let fold_stop_words = config.folding != AccentFolding::Off;
        let stop_words = if config.stop_words {
            list.iter()
                .map(|word| if fold_stop_words { fold(word).into_owned() } else { (*word).to_owned() })
                .collect()
        } else {
            HashSet::new()
        };
        Self {
            config,
            stemmer: algorithm.map(|algorithm| Arc::new(Stemmer::create(algorithm))),
            stop_words: Arc::new(stop_words),
        }
    }

    /// What this analyzer does.
    pub fn config(&self) -> AnalyzerConfig {
        self.config
    }

    /// The language of its stop words and stemmer.
    pub fn language(&self) -> Language {
        self.config.language
    }

    /// The index terms of `text`, in text order, repeats included.
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut terms = Vec::new();
        for_each_token(text, |token| {
            if let Some(term) = self.term(token) {
                terms.push(term);
            }
        });
        terms
    }

    /// The term for one lowercased token, or `None` for a stop word.
    fn term(&self, token: &str) -> Option<String> {
        match self.config.folding {
            AccentFolding::Off => {
                if self.stop_words.contains(token) {
                    return None;
                }
                Some(self.stem(token))
            }
            AccentFolding::BeforeStemming => {
                let folded = fold(token);
                if self.stop_words.contains(folded.as_ref()) {
                    return None;
                }
                Some(self.stem(&folded))
            }
            AccentFolding::AfterStemming => {
                if self.stop_words.contains(fold(token).as_ref()) {
                    return None;
                }
                let stem = self.stem(token);
                Some(match fold(&stem) {
                    Cow::Borrowed(_) => stem,
                    Cow::Owned(folded) => folded,
                })
            }
        }
    }

    fn stem(&self, token: &str) -> String {
        match &self.stemmer {
            // Numbers and codes ("1998", "f150") are kept as written.
            Some(stemmer) if token.chars().all(char::is_alphabetic) => stemmer.stem(token).into_owned(),
            _ => token.to_owned(),
        }
    }
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::from_config(AnalyzerConfig::default())
    }
}

impl From<AnalyzerConfig> for Analyzer {
    fn from(config: AnalyzerConfig) -> Self {
        Self::from_config(config)
    }
}

impl From<Analyzer> for AnalyzerConfig {
    fn from(analyzer: Analyzer) -> Self {
        analyzer.config
    }
}

impl fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Analyzer").field("config", &self.config).finish_non_exhaustive()
    }
}

impl PartialEq for Analyzer {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}

/// Calls `emit` with each lowercased token of `text`: maximal runs of letters and digits, with
/// combining marks kept on the letter they follow (composed with it when a precomposed letter
/// exists, so decomposed and precomposed input give the same tokens).
fn for_each_token(text: &str, mut emit: impl FnMut(&str)) {
    let mut token = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            token.extend(c.to_lowercase());
        } else if is_combining_mark(c) && !token.is_empty() {
            let composed = token.chars().next_back().and_then(|last| compose(last, c));
            match composed {
                Some(composed) => {
                    token.pop();
                    token.push(composed);
                }
                None => token.push(c),
            }
        } else if !token.is_empty() {
            emit(&token);
            token.clear();
        }
    }
    if !token.is_empty() {
        emit(&token);
    }
}

/// Combining Diacritical Marks block.
fn is_combining_mark(c: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&c)
}

/// The precomposed lowercase letter for `base` followed by the combining `mark`, for the accents
/// of Spanish and its neighbours.
fn compose(base: char, mark: char) -> Option<char> {
    let composed = match (mark, base) {
        ('\u{0301}', 'a') => 'á',
        ('\u{0301}', 'e') => 'é',
        ('\u{0301}', 'i') => 'í',
        ('\u{0301}', 'o') => 'ó',
        ('\u{0301}', 'u') => 'ú',
        ('\u{0301}', 'y') => 'ý',
        ('\u{0300}', 'a') => 'à',
        ('\u{0300}', 'e') => 'è',
        ('\u{0300}', 'i') => 'ì',
        ('\u{0300}', 'o') => 'ò',
        ('\u{0300}', 'u') => 'ù',
        ('\u{0302}', 'a') => 'â',
        ('\u{0302}', 'e') => 'ê',
        ('\u{0302}', 'i') => 'î',
        ('\u{0302}', 'o') => 'ô',
        ('\u{0302}', 'u') => 'û',
        ('\u{0303}', 'n') => 'ñ',
        ('\u{0303}', 'a') => 'ã',
        ('\u{0303}', 'o') => 'õ',
        ('\u{0308}', 'a') => 'ä',
        ('\u{0308}', 'e') => 'ë',
        ('\u{0308}', 'i') => 'ï',
        ('\u{0308}', 'o') => 'ö',
        ('\u{0308}', 'u') => 'ü',
        ('\u{0308}', 'y') => 'ÿ',
        ('\u{0327}', 'c') => 'ç',
        _ => return None,
    };
    Some(composed)
}

/// `token` with accents and other diacritics removed from Latin letters (`ß`, `æ`, `œ` and `þ`
/// become two letters); combining marks are dropped.
pub(crate) fn fold(token: &str) -> Cow<'_, str> {
    if token.is_ascii() {
        return Cow::Borrowed(token);
    }
    let mut folded = String::with_capacity(token.len());
    for c in token.chars() {
        match fold_char(c) {
            Folded::Keep => folded.push(c),
            Folded::One(base) => folded.push(base),
            Folded::Two(first, second) => {
                folded.push(first);
                folded.push(second);
            }
            Folded::Drop => {}
        }
    }
    Cow::Owned(folded)
}

enum Folded {
    Keep,
    One(char),
    Two(char, char),
    Drop,
}

fn fold_char(c: char) -> Folded {
    let base = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'ª' => 'a',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'ď' | 'đ' | 'ð' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'ĥ' | 'ħ' => 'h',
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => 'i',
        'ĵ' => 'j',
        'ķ' => 'k',
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' | 'º' => 'o',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => 's',
        'ţ' | 'ť' | 'ŧ' | 'ț' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'ŵ' => 'w',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        // Greek final sigma, which lowercasing produces only at word ends.
        'ς' => 'σ',
        'ß' => return Folded::Two('s', 's'),
        'æ' => return Folded::Two('a', 'e'),
        'œ' => return Folded::Two('o', 'e'),
        'þ' => return Folded::Two('t', 'h'),
        'ĳ' => return Folded::Two('i', 'j'),
        c if is_combining_mark(c) => return Folded::Drop,
        _ => return Folded::Keep,
    };
    Folded::One(base)
}

#[cfg(test)]
#[path = "analysis_tests.rs"]
mod tests;

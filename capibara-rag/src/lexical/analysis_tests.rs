//! The analyzer's steps, one by one and together.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for_each_token(text, |token| tokens.push(token.to_owned()));
    tokens
}

fn config(language: Language, folding: AccentFolding, stop_words: bool) -> AnalyzerConfig {
    AnalyzerConfig { language, folding, stop_words }
}

#[test]
fn tokens_are_lowercased_runs_of_letters_and_digits() {
    assert_eq!(
        tokens("¡Hola, MUNDO! El año 1998 (3,5 km) e-mail ÑANDÚ_x"),
        ["hola", "mundo", "el", "año", "1998", "3", "5", "km", "e", "mail", "ñandú", "x"]
    );
    assert_eq!(tokens("Σοφία 東京 İstanbul"), ["σοφία", "東京", "i\u{307}stanbul"]);
    assert!(tokens("  ¿? ... —  ").is_empty());
    assert!(tokens("").is_empty());
}

#[test]
fn decomposed_accents_are_composed_with_their_letter() {
    assert_eq!(tokens("cancio\u{301}n Espan\u{303}a pingu\u{308}ino"), ["canción", "españa", "pingüino"]);
    // A mark with no precomposed letter stays on the token; a mark with no letter before it is a
    // separator.
    assert_eq!(tokens("q\u{301}x \u{301}a"), ["q\u{301}x", "a"]);
}

#[test]
fn folding_removes_latin_diacritics() {
    assert_eq!(fold("canción"), "cancion");
    assert_eq!(fold("ñandú pingüino façade"), "nandu pinguino facade");
    assert_eq!(fold("straße cœur æther"), "strasse coeur aether");
    assert_eq!(fold("łódź čeština"), "lodz cestina");
    assert_eq!(fold("q\u{301}x"), "qx");
    assert_eq!(fold("東京 σοφία"), "東京 σοφία");
    assert_eq!(fold("plain"), "plain");
}

#[test]
fn spanish_stop_words_are_dropped_with_or_without_accents() {
    let analyzer = Analyzer::new(Language::Spanish);
    assert!(analyzer.terms("el de la que y en los más él está").is_empty());
    assert!(analyzer.terms("mas el esta").is_empty());
    assert_eq!(analyzer.terms("Qué es la fotosíntesis"), ["fotosintesis"]);
}

#[test]
fn spanish_stems_match_across_inflections_and_missing_accents() {
    let analyzer = Analyzer::new(Language::Spanish);
    let one = analyzer.terms("canción");
    assert_eq!(one, analyzer.terms("canciones"));
    assert_eq!(one, analyzer.terms("CANCIÓN"));
    assert_eq!(analyzer.terms("jugadores"), analyzer.terms("jugador"));
    assert_eq!(analyzer.terms("Panthers 308 puntos"), ["panthers", "308", "punt"]);
    for term in analyzer.terms("Camarón de la Isla, pingüinos, años, corazón") {
        assert!(term.is_ascii(), "{term}");
    }
}

#[test]
fn folding_order_changes_only_which_words_share_a_term() {
    let after = Analyzer::from_config(config(Language::Spanish, AccentFolding::AfterStemming, true));
    let before = Analyzer::from_config(config(Language::Spanish, AccentFolding::BeforeStemming, true));
    let off = Analyzer::from_config(config(Language::Spanish, AccentFolding::Off, true));
    // The Snowball Spanish stemmer drops acute accents itself; ñ and ü are left to folding.
    assert_eq!(off.terms("canción"), ["cancion"]);
    assert_eq!(after.terms("canción"), ["cancion"]);
    assert_eq!(before.terms("canción"), ["cancion"]);
    assert_eq!(off.terms("pingüinos años"), ["pingüin", "años"]);
    assert_eq!(after.terms("pingüinos años"), ["pinguin", "anos"]);
    assert_eq!(before.terms("pingüinos años"), ["pinguin", "anos"]);
    // Folding first lets a word typed without its accent stem like the written one.
    assert_eq!(before.terms("educacion"), before.terms("educación"));
    assert_ne!(after.terms("educacion"), after.terms("educación"));
    for analyzer in [&after, &before, &off] {
        assert_eq!(analyzer.terms("Año 2024"), analyzer.terms("año 2024"));
    }
}

#[test]
fn english_analysis_uses_porter2_and_english_stop_words() {
    let analyzer = Analyzer::new(Language::English);
    assert_eq!(
        analyzer.terms("The running dogs were jumping over the fences"),
        ["run", "dog", "jump", "fenc"]
    );
    assert_eq!(analyzer.terms("Café naïve"), ["cafe", "naiv"]);
}

#[test]
fn no_language_only_tokenises_and_folds() {
    let analyzer = Analyzer::new(Language::None);
    assert_eq!(analyzer.terms("Las canciones de él"), ["las", "canciones", "de", "el"]);
    let kept = Analyzer::from_config(config(Language::Spanish, AccentFolding::AfterStemming, false));
    assert_eq!(kept.terms("de la canción"), ["de", "la", "cancion"]);
}

#[test]
fn numbers_and_codes_are_not_stemmed() {
    let analyzer = Analyzer::new(Language::Spanish);
    assert_eq!(analyzer.terms("1990s F150 x86"), ["1990s", "f150", "x86"]);
}

#[test]
fn serialises_as_its_config() {
    let analyzer = Analyzer::from_config(config(Language::English, AccentFolding::BeforeStemming, false));
    let json = serde_json::to_value(&analyzer).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"language": "english", "folding": "before_stemming", "stop_words": false})
    );
    let back: Analyzer = serde_json::from_value(json).unwrap();
    assert_eq!(back, analyzer);
    assert_eq!(back.terms("the dogs"), ["the", "dog"]);
    let defaulted: Analyzer = serde_json::from_str("{}").unwrap();
    assert_eq!(defaulted.config(), AnalyzerConfig::for_language(Language::Spanish));
    assert!(format!("{defaulted:?}").contains("Spanish"));
}

//! Action labels of a proposal from per-class verb and noun scores, as the reference's
//! `fuse_verb_noun_map`: the top 10 verbs times the top 30 nouns, the 20 best products.

/// Verbs and nouns considered, and (verb, noun) pairs kept.
const VERB_TOPK: usize = 10;
const NOUN_TOPK: usize = 30;
const PAIRS: usize = 20;

/// One (verb, noun) pair and its scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActionScore {
    pub verb: usize,
    pub noun: usize,
    pub verb_score: f32,
    pub noun_score: f32,
    /// verb_score · noun_score.
    pub score: f32,
}

/// Class indices by decreasing score.
fn ranked(scores: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    idx
}

/// The best (verb, noun) pairs of one proposal, by decreasing product.
pub fn fuse_verb_noun(verb: &[f32], noun: &[f32]) -> Vec<ActionScore> {
    let (verbs, nouns) = (ranked(verb), ranked(noun));
    let (verbs, nouns) = (
        &verbs[..VERB_TOPK.min(verbs.len())],
        &nouns[..NOUN_TOPK.min(nouns.len())],
    );
    let mut pairs: Vec<ActionScore> = nouns
        .iter()
        .flat_map(|&n| {
            verbs.iter().map(move |&v| ActionScore {
                verb: v,
                noun: n,
                verb_score: verb[v],
                noun_score: noun[n],
                score: verb[v] * noun[n],
            })
        })
        .collect();
    pairs.sort_by(|a, b| b.score.total_cmp(&a.score));
    pairs.truncate(PAIRS);
    pairs
}

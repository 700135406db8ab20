//! Layer-wise learning-rate decay (docs/training.md#layer-wise-decay-groups,
//! OPTIMIZER.LAYER_WISE_LR_DECAY < 1): the LR shrinks geometrically from the head down to the stem
//! of a transformer-style backbone.

use tch::Tensor;

use super::{OptimError, ParamGroup};
use crate::config::schema::{Depth, OptimizerConfig};

const KEY_DECAY: &str = "OPTIMIZER.LAYER_WISE_LR_DECAY";
const KEY_DEPTH: &str = "VIDEO.BACKBONE.DEPTH";

/// Multiplier of text-encoder parameters: the reference reads OPTIMIZER.TEXT_LR_MULT when the
/// key exists (tada has no text models, so no such key) and falls back to this.
const TEXT_LR_MULT: f64 = 0.1;

/// Layer id (0 = stem … L+1 = head) of a parameter of a backbone with `num_layers` blocks.
fn layer_id(name: &str, num_layers: usize) -> Result<usize, OptimError> {
    let top = num_layers + 1;
    // The reference skips a DDP `module.` wrapper; it tests for "module" anywhere in the name,
    // which would misread a name that merely contains the word, so only a leading one is skipped.
    let n = name.strip_prefix("module.").unwrap_or(name);
    if n.contains("text") {
        return Ok(top);
    }
    if ["embd", "cls_token", "embedding", "logit_scale"]
        .iter()
        .any(|s| n.contains(s))
    {
        return Ok(0);
    }
    let parts: Vec<&str> = n.split('.').collect();
    if parts.first() != Some(&"backbone") {
        return Ok(top);
    }
    match parts.get(1).copied() {
        Some("conv1" | "ln_pre") => Ok(0),
        Some("ln_post" | "proj") => Ok(top),
        _ => {
            let i = parts
                .get(2)
                .and_then(|s| s.parse::<usize>().ok())
                .ok_or_else(|| {
                    OptimError::invalid(
                        KEY_DECAY,
                        format!(
                            "parameter {name} has no block index (backbone.<stage>.<i>.…), so \
                             its layer for the decay is unknown"
                        ),
                    )
                })?;
            if i >= num_layers {
                return Err(OptimError::invalid(
                    KEY_DEPTH,
                    format!("is {num_layers}, but parameter {name} is in block {i}"),
                ));
            }
            Ok(i + 1)
        }
    }
}

/// The groups of docs/training.md#layer-wise-decay-groups, keyed like the reference
/// (`layer_{id}_{decay|no_decay}[_new_param][_head] [_text]`); a group's settings come from its
/// key, so the suffix checks below reproduce the reference's precedence (e.g. a new head parameter
/// gets the head multiplier only).
pub(super) fn layer_wise_groups(
    params: &[(String, Tensor)],
    o: &OptimizerConfig,
    depth: Option<&Depth>,
) -> Result<Vec<ParamGroup>, OptimError> {
    let num_layers = match depth {
        Some(Depth::Layers(n)) => *n,
        Some(Depth::PerStage(_)) => {
            return Err(OptimError::Unsupported(format!(
                "{KEY_DECAY} < 1 with a per-stage {KEY_DEPTH} (ConvNeXt): the reference has no \
                 layer numbering for it (it calls an undefined get_num_layer_for_convnext)"
            )))
        }
        None => return Err(OptimError::missing(KEY_DEPTH, &format!("{KEY_DECAY} < 1"))),
    };
    let decay = o.layer_wise_lr_decay;
    // HEAD_LRMULT is absent from the reference's defaults (its branch would fail without it);
    // unset here means no head multiplier.
    let head_mult = o.head_lrmult.unwrap_or(1.0);
    let mut groups: Vec<ParamGroup> = Vec::new();
    for (name, t) in params {
        let (kind, weight_decay) = if t.dim() == 1 || name.ends_with(".bias") {
            ("no_decay", 0.0)
        } else {
            ("decay", o.weight_decay)
        };
        let id = layer_id(name, num_layers)?;
        let mut key = format!("layer_{id}_{kind}");
        if o.new_params.iter().any(|p| name.contains(p.as_str())) {
            key.push_str("_new_param");
        }
        if head_mult > 1.0 && name.contains("head") {
            key.push_str("_head");
        }
        if name.contains("text") {
            key.push_str("_text");
        }
        if let Some(g) = groups.iter_mut().find(|g| g.name == key) {
            g.params.push((name.clone(), t.shallow_clone()));
            continue;
        }
        // decay^(L+1-id) with C's pow, as Python's `float ** int` computes it.
        let mut lr_mult = decay.powf((num_layers + 1 - id) as f64);
        if key.ends_with("new_param") {
            lr_mult *= o.new_params_mult;
        }
        if key.ends_with("head") {
            lr_mult *= head_mult;
        }
        if key.ends_with("text") {
            lr_mult = TEXT_LR_MULT;
        }
        groups.push(ParamGroup {
            name: key,
            weight_decay,
            lr_mult,
            params: vec![(name.clone(), t.shallow_clone())],
            method: None,
        });
    }
    Ok(groups)
}

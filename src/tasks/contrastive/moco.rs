//! MoCo v2's key side: a momentum copy of the model encodes the key view, and a queue of past
//! keys supplies the negatives. Every piece lives in the run's VarStore (under
//! [`KEY_ENCODER_PATH`] and `contrastive.`), so checkpoints and `--resume` cover it.

use tch::nn::{Init, VarStore};
use tch::{Kind, Tensor};

use super::embedding::embedding;
use super::loss::{moco_info_nce, Contrast};
use crate::config::schema::ContrastiveSection;
use crate::config::Config;
use crate::models::Session;
use crate::models::VideoModel;
use crate::tasks::TaskError;

/// Variable path of MoCo's key encoder (`momentum_encoder.backbone.…`).
pub const KEY_ENCODER_PATH: &str = "momentum_encoder";

/// The key encoder, its momentum pairs and the queue.
pub(super) struct KeyEncoder {
    encoder: VideoModel,
    /// `(key parameter, query parameter)`: the momentum update pairs.
    pairs: Vec<(Tensor, Tensor)>,
    momentum: f64,
    /// `(K, D)` L2-normalised past keys (a non-trainable variable).
    queue: Tensor,
    /// `(1)` next row of the queue to overwrite, stored as a float so it checkpoints with the
    /// other variables (exact below 2^24 rows).
    ptr: Tensor,
    /// Keys of the current step, enqueued after the optimiser step.
    pending: Option<Tensor>,
}

impl KeyEncoder {
    /// A copy of the model under [`KEY_ENCODER_PATH`], with its parameters frozen to autograd
    /// and equal to the query encoder's, and the queue of random unit keys MoCo starts from.
    pub fn new(session: &Session, cfg: &Config) -> Result<Self, TaskError> {
        let root = session.vs.root();
        let encoder = VideoModel::new(&(&root / KEY_ENCODER_PATH), cfg)?;
        let pairs = tie_to_query(&session.vs)?;
        let c = &cfg.pretrain.contrastive;
        let (queue, ptr) = queue(&session.vs, c);
        Ok(Self {
            encoder,
            pairs,
            momentum: c.momentum,
            queue,
            ptr,
            pending: None,
        })
    }

    /// MoCo's loss for query view `v1` and key view `v2`. With `key_grad` (ParamCrop's key
    /// crop learns too) the key branch runs outside no_grad: its weights are frozen to
    /// autograd, not its input.
    pub fn contrast(
        &mut self,
        model: &VideoModel,
        v1: &Tensor,
        v2: &Tensor,
        key_grad: bool,
        temperature: f64,
    ) -> Result<Contrast, TaskError> {
        let q = embedding(model, v1)?;
        let k = if key_grad {
            embedding(&self.encoder, v2)?
        } else {
            tch::no_grad(|| embedding(&self.encoder, &v2.detach()))?
        };
        let c = moco_info_nce(&q, &k, &self.queue, temperature);
        self.pending = Some(k.detach());
        Ok(c)
    }

    /// After the optimiser step: the momentum update of the key encoder, then this step's keys
    /// into the queue.
    pub fn after_step(&mut self) {
        let m = self.momentum;
        tch::no_grad(|| {
            for (k, q) in &self.pairs {
                let mut k = k.shallow_clone();
                let _ = k.g_mul_scalar_(m).g_add_(&(q * (1.0 - m)));
            }
            if let Some(keys) = self.pending.take() {
                let rows = self.queue.size()[0];
                let start = self.ptr.double_value(&[0]) as i64;
                let n = keys.size()[0];
                // Ring buffer: rows start, start+1, … modulo the queue length.
                let idx = (Tensor::arange(n, (Kind::Int64, keys.device())) + start).remainder(rows);
                let _ = self.queue.shallow_clone().index_copy_(
                    0,
                    &idx,
                    &keys.to_kind(self.queue.kind()),
                );
                let _ = self.ptr.shallow_clone().fill_(((start + n) % rows) as f64);
            }
        });
    }
}

/// Copies every query variable into its key twin and freezes the twin; returns the
/// `(key, query)` pairs of trainable parameters for the momentum update.
fn tie_to_query(vs: &VarStore) -> Result<Vec<(Tensor, Tensor)>, TaskError> {
    let vars = vs.variables();
    let prefix = format!("{KEY_ENCODER_PATH}.");
    let mut pairs = Vec::new();
    tch::no_grad(|| -> Result<(), TaskError> {
        for (name, k) in &vars {
            let Some(q_name) = name.strip_prefix(&prefix) else {
                continue;
            };
            let q = vars.get(q_name).ok_or_else(|| {
                TaskError::Invalid(format!("key encoder variable {name} has no query twin"))
            })?;
            let mut k = k.shallow_clone();
            k.copy_(q);
            if q.requires_grad() {
                k = k.set_requires_grad(false);
                pairs.push((k, q.shallow_clone()));
            } else {
                // Buffers (BN statistics) are copied once and then follow the key encoder's own
                // forward passes.
                let _ = k.set_requires_grad(false);
            }
        }
        Ok(())
    })?;
    Ok(pairs)
}

/// The queue `(QUEUE_SIZE, HEAD_OUT_DIM)` of random unit keys and its write pointer, as
/// non-trainable variables under `contrastive.`.
fn queue(vs: &VarStore, c: &ContrastiveSection) -> (Tensor, Tensor) {
    let dim = c.head_out_dim as i64;
    let store = vs.root() / "contrastive";
    let queue = store.var("queue", &[c.queue_size as i64, dim], Init::Const(0.0));
    let ptr = store.var("queue_ptr", &[1], Init::Const(0.0));
    tch::no_grad(|| {
        let q = Tensor::randn([c.queue_size as i64, dim], (Kind::Float, vs.device()));
        let norm = q.norm_scalaropt_dim(2, [1i64].as_slice(), true);
        queue.shallow_clone().copy_(&(q / norm));
    });
    (queue.set_requires_grad(false), ptr.set_requires_grad(false))
}

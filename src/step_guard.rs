//! Turns a libtorch failure inside a training step into an error the run can report.
//!
//! tch's infallible methods panic when libtorch throws (CUDA out of memory, a shape the network
//! cannot take, a driver fault). Inside the forward and backward pass of a step the model's
//! weights and the optimiser state are still those of the last completed step, so the loop
//! can catch the panic, checkpoint that state and stop with one line that says what failed.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is inside [`guarded`]: a panic hook can stay quiet then, since the
/// panic becomes an error that is reported on its own.
pub fn in_guard() -> bool {
    GUARDED.with(Cell::get)
}

/// Makes the process's panic hook stay quiet for panics inside [`guarded`], which come back as
/// errors reported on their own (the default hook would print them first, with a Rust source
/// location). For binaries; every other panic is printed as before.
pub fn install_panic_hook() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if in_guard() {
            // The whole text (libtorch's C++ frames included) for whoever asks for it.
            tracing::debug!("{info}");
        } else {
            default_hook(info);
        }
    }));
}

/// Runs `f`; a panic inside it comes back as `Err(message)`.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let outer = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    result.map_err(|payload| panic_message(payload.as_ref()))
}

/// The useful line of a panic payload: for tch's `Torch("…")` errors the exception's message
/// without libtorch's C++ backtrace.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    let raw = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    let text = raw
        .split_once("Torch(\"")
        .map_or(raw, |(_, rest)| rest.trim_end_matches("\")"));
    // The payload is the error's Debug text, whose newlines are escaped.
    let first = libtorch_message(&text.replace("\\n", "\n"));
    if first.is_empty() {
        raw.lines().next().unwrap_or(raw).to_string()
    } else {
        first
    }
}

/// A libtorch error text without what libtorch appends to the message ("Exception raised
/// from …" and a C++ frame list, kilobytes of it), on one line. Text that is not libtorch's
/// comes back on one line, otherwise unchanged.
pub fn libtorch_message(text: &str) -> String {
    // c10::Error appends "Exception raised from …" then the frames; an enforce failure (an
    // allocation, for one) appends the frames alone.
    let end = ["Exception raised from", "frame #0:"]
        .iter()
        .filter_map(|m| text.find(m))
        .min()
        .unwrap_or(text.len());
    text[..end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A hint for a step failure's message, where one is known.
pub fn hint(message: &str) -> Option<&'static str> {
    message.contains("out of memory").then_some(
        "lower TRAIN.BATCH_SIZE, or set TRAIN.MICRO_BATCH_SIZE to run the batch in chunks, \
         or TRAIN.PRECISION bf16",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    #[test]
    fn a_libtorch_error_becomes_its_first_line() {
        assert!(!in_guard());
        let r = guarded(|| {
            assert!(in_guard());
            Tensor::zeros([2, 3], tch::kind::FLOAT_CPU)
                .matmul(&Tensor::zeros([4, 5], tch::kind::FLOAT_CPU))
        });
        assert!(!in_guard());
        let msg = r.unwrap_err();
        assert!(msg.contains("cannot be multiplied"), "{msg}");
        assert!(
            !msg.contains("Exception raised from") && !msg.contains('\n'),
            "{msg}"
        );
        assert_eq!(guarded(|| 7).unwrap(), 7);
        assert_eq!(guarded(|| panic!("plain")).unwrap_err(), "plain");
    }

    #[test]
    fn libtorch_text_loses_its_cpp_frames() {
        let e = Tensor::zeros([2, 3], tch::kind::FLOAT_CPU)
            .f_matmul(&Tensor::zeros([4, 5], tch::kind::FLOAT_CPU))
            .unwrap_err()
            .to_string();
        let m = libtorch_message(&e);
        assert!(
            m.contains("cannot be multiplied") && !m.contains("frame #"),
            "{m}"
        );
        assert!(m.len() < 200, "{m}");
        assert_eq!(libtorch_message("a\nb"), "a b");
        assert_eq!(
            libtorch_message("can't allocate memory\nframe #0: c10::alloc_cpu + 0x365\n"),
            "can't allocate memory"
        );
    }

    #[test]
    fn out_of_memory_gets_a_hint() {
        let m = "CUDA out of memory. Tried to allocate 20.00 GiB";
        assert!(hint(m).unwrap().contains("TRAIN.MICRO_BATCH_SIZE"));
        assert!(hint("mat1 and mat2 shapes cannot be multiplied").is_none());
    }
}

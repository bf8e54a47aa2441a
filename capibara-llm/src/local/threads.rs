//! How many CPU threads candle uses, and what callers must do to choose it.
//!
//! Candle 0.11 sizes three process-global pools, each once, on first use, from the environment:
//! - the barrier pool that runs the quantized matrix products (almost all of a local model's
//!   time): `CANDLE_NUM_THREADS`, else `RAYON_NUM_THREADS`, else the number of physical cores (or
//!   the process's CPU mask). The calling thread takes part, so the pool spawns that number
//!   minus one workers; with 1 there are none and everything runs on the generation thread.
//!   Its workers spin (`CANDLE_BARRIER_POOL_SPIN_LIMIT`, default 25,000 rounds) before parking.
//! - rayon's global pool and candle's private rayon pool (float matrix products through `gemm`,
//!   softmax, …): `RAYON_NUM_THREADS`, else the physical cores.
//!
//! Nothing can resize them later, and this crate cannot set the variables for you (changing the
//! environment of a running multi-threaded process is unsound). So a program that runs a
//! [`LocalLlm`](super::LocalLlm) with `threads = N` must put `CANDLE_NUM_THREADS=N` and
//! `RAYON_NUM_THREADS=N` in its environment before the first tensor operation: at the top of
//! `main` before any other thread starts, or in the environment of the process that launches it
//! ([`environment`] lists the pairs). [`LocalLlm::load`](super::LocalLlm::load) compares the
//! pools with `threads` and logs a warning when they differ.
//!
//! One thread per generation is the default because spinning workers fight for the cores: when
//! another process (or another generation) holds the second core, two-thread decoding drops
//! several-fold.

/// The environment variables that size candle's pools.
pub const ENVIRONMENT_VARIABLES: [&str; 2] = ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"];

/// The environment a process needs for candle to use `threads` threads (see the module docs).
pub fn environment(threads: usize) -> [(&'static str, String); 2] {
    ENVIRONMENT_VARIABLES.map(|name| (name, threads.to_string()))
}

/// Threads candle's pools use in this process (creating them if no tensor operation has yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandleThreads {
    /// Threads running a quantized matrix product (pool workers plus the caller).
    pub quantized: usize,
    /// Threads of rayon-parallel float operations.
    pub rayon: usize,
}

/// The thread counts candle uses in this process.
pub fn candle_threads() -> CandleThreads {
    CandleThreads {
        quantized: candle_core::utils::barrier_pool().n_workers() + 1,
        rayon: candle_core::utils::get_num_threads(),
    }
}

/// Warns when candle's pools do not match the requested thread count.
pub(crate) fn check(threads: usize) -> CandleThreads {
    let actual = candle_threads();
    if actual.quantized != threads || actual.rayon != threads {
        tracing::warn!(
            requested = threads,
            quantized = actual.quantized,
            rayon = actual.rayon,
            "candle's thread pools do not match the local model's `threads`; set CANDLE_NUM_THREADS={threads} and \
             RAYON_NUM_THREADS={threads} in the environment before the process starts"
        );
    }
    actual
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_both_pools() {
        assert_eq!(
            environment(2),
            [("CANDLE_NUM_THREADS", "2".to_owned()), ("RAYON_NUM_THREADS", "2".to_owned())]
        );
    }
}

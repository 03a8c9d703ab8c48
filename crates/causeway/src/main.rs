use std::process::ExitCode;

/// mimalloc instead of glibc's allocator: OTLP decoding allocates a string or a vector per
/// attribute and frees them in bulk, and glibc spent most of ingest in `malloc_consolidate`
/// (measured with `perf record`; see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    causeway::cli::main()
}

// argon2 allocates 19 MiB per hash; glibc's per-thread arenas keep such
// blocks fragmented and never hand them back (2 GiB after a sign-in flood).
// mimalloc returns them, so memory stays flat under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    derp::cli::main()
}

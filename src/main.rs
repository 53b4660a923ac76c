fn main() -> std::process::ExitCode {
    derp::cli::main()
}

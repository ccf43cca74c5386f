use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = loadgen::cli::Cli::parse();
    match loadgen::commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qbench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

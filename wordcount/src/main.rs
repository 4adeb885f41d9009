//! The `wordcount` command; everything but the process boundary lives in the library's `cli`.

fn main() -> std::process::ExitCode {
    wordcount::cli::main(std::env::args_os().skip(1))
}

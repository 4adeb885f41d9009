//! The `wordcount` command.

fn main() {
    eprintln!("wordcount: not yet implemented");
    std::process::exit(2);
}

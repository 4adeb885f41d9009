//! The `blob2batch` command: parses the command line and hands over to the library.

fn main() {
    eprintln!("blob2batch: not yet implemented");
    std::process::exit(2);
}

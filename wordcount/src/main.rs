//! The `wordcount` command; everything but the process boundary lives in the library's `cli` and
//! `commands`.

use std::ffi::OsString;
use std::path::Path;

/// Where the container image puts the binary.
const IMAGE_PATH: &str = "/wordcount";

fn main() -> std::process::ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // A container engine appends a task's command line (`/wordcount -o ...`) to the image's
    // ENTRYPOINT (`/wordcount`), so inside the image the program may see its own path first.
    // Nobody means to count the words of the binary itself, so that argument is dropped.
    let in_image = std::env::current_exe().is_ok_and(|exe| exe == Path::new(IMAGE_PATH));
    if in_image && args.first().is_some_and(|a| a == IMAGE_PATH) {
        args.remove(0);
    }
    wordcount::commands::main(args)
}

//! The characters `run` prints off a terminal, in one table: what each means. The
//! original harness printed the first ones; soakcheck's own follow the same pattern (a
//! letter for what happened, then whom: `S` the sink, `N` worker N, `sK` sender K). The
//! table is what `run --help` lists, and a test holds the README's list to it.

/// Each mark, with `N` for a worker number (0 is the initializer) and `K` for a key.
pub const MARKS: &[(&str, &str)] = &[
    (",", "a second of checks passed"),
    ("{AP}", "every sender showed a new ack (ack progress)"),
    (
        "{RP}",
        "every sender's registry showed an open stream (registry progress)",
    ),
    (
        "cS cN",
        "the sink / worker N was crashed (SIGKILL to its process group)",
    ),
    ("rS rN", "... restarted"),
    (
        "csK",
        "the sender of key K was crashed (restarted 0.1 s later, silently)",
    ),
    ("pS pN", "the sink / worker N was paused (SIGSTOP)"),
    ("uS uN", "... resumed (SIGCONT)"),
    (
        ":s :cN",
        "a crash loop skipped its turn: the cluster was not ready",
    ),
    ("Join N.", "worker N joined the cluster (grow)"),
    ("Shrink N", "worker N was shrunk out of it"),
    (
        "nS nN nsK",
        "a network fault on a sink link / worker N's control link / sender K's link",
    ),
    ("hS hN hsK", "... healed"),
    (
        "<S >S",
        "the sink's clock stepped back / forward (<N >N: worker N's)",
    ),
    ("~S *S", "... strobes / runs at another rate"),
    ("=S", "... is true again"),
    (
        "wS wN",
        "the sink / worker N lost power (its unsynced writes are gone)",
    ),
    ("W", "the whole cluster lost power at once"),
    (":w", "a power loop waits for the cluster to be ready"),
    ("eS eN", "the sink's / worker N's disk fails an operation"),
    ("dS dN", "... works again"),
];

/// The table as `run --help` ends with it.
pub fn help() -> String {
    let mut text = String::from(
        "Off a terminal, run prints the original harness's lines (Start time:, End time:, \
         Duration:) and one mark per event:\n",
    );
    for (mark, meaning) in MARKS {
        text += &format!("  {mark:<10} {meaning}\n");
    }
    text += "\nOn a terminal it draws a status line instead, fitted to the terminal's width.";
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mark_is_in_the_help() {
        let help = help();
        for (mark, meaning) in MARKS {
            assert!(help.contains(mark) && help.contains(meaning), "{mark}");
        }
    }
}

//! `soakcheck completions SHELL` and `soakcheck man`: the shell completion scripts
//! (clap_complete) and the man pages (clap_mangen), both made from the one command
//! definition, so they never drift from `--help`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args)]
pub struct ManArgs {
    /// Write soakcheck.1 and one page per subcommand (soakcheck-run.1, ...) into DIR
    /// instead of soakcheck.1 to stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Writes the completion script of `shell` for `command` to stdout.
pub fn completions(args: CompletionsArgs, mut command: clap::Command) -> anyhow::Result<()> {
    let name = command.get_name().to_string();
    clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
    Ok(())
}

/// Writes the man page of `command` to stdout, or every page into `--dir`.
pub fn man(args: ManArgs, command: clap::Command) -> anyhow::Result<()> {
    let Some(dir) = args.dir else {
        let mut out = std::io::stdout().lock();
        clap_mangen::Man::new(command).render(&mut out)?;
        return Ok(out.flush()?);
    };
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let written = write_pages(&dir, command)?;
    println!("wrote {written} man pages into {}", dir.display());
    Ok(())
}

/// Writes `command`'s page as `dir/NAME.1` (NAME: `soakcheck`, `soakcheck-run`, ...,
/// as clap names subcommands once built), then its subcommands'; returns how many.
fn write_pages(dir: &std::path::Path, mut command: clap::Command) -> anyhow::Result<usize> {
    command.build();
    let name = command
        .get_display_name()
        .unwrap_or(command.get_name())
        .to_string();
    let path = dir.join(format!("{name}.1"));
    let mut file =
        std::fs::File::create(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    clap_mangen::Man::new(command.clone()).render(&mut file)?;
    let mut written = 1;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        written += write_pages(dir, sub.clone())?;
    }
    Ok(written)
}

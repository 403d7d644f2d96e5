use std::process::ExitCode;

use crate::config::Config;
use crate::ops::doctor::{self, Status};

pub fn run(cfg: &Config) -> Result<ExitCode, ExitCode> {
    let checks = doctor::run(cfg);
    let mut failed = false;
    for c in &checks {
        let mark = match c.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        println!("[{mark}] {}: {}", c.name, c.summary);
        if c.status != Status::Ok && !c.fix.is_empty() {
            println!("       fix: {}", c.fix);
        }
        failed |= c.status == Status::Fail;
    }
    if failed {
        println!("\nSome checks failed; fix them and run `reelbox doctor` again.");
        Ok(ExitCode::from(1))
    } else {
        println!("\nAll essential checks passed.");
        Ok(ExitCode::SUCCESS)
    }
}

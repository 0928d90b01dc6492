//! Helpers shared by the load benchmarks: environment knobs, /proc readings, percentiles.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::fake_bot_api::FakeBotApi;

/// The token the bot is started with; the fake server accepts only it.
pub const TOKEN: &str = "123456789:AAHtestTOKENsecretVALUEabcdefghijk";

/// The real `sme-advisor serve` against the fake server, logging to `dir/bot.log`; killed on drop.
pub struct Bot {
    child: Child,
    dir: PathBuf,
}

impl Bot {
    /// Starts the bot with its database in `dir`; `extra` environment variables win over the defaults.
    pub fn start(api: &FakeBotApi, dir: &Path, extra: &[(&str, &str)]) -> Bot {
        Bot::start_program(Path::new(env!("CARGO_BIN_EXE_sme-advisor")), &["serve"], api, dir, extra)
    }

    /// Starts another bot program (the bare echo bot) with the same environment.
    pub fn start_program(program: &Path, args: &[&str], api: &FakeBotApi, dir: &Path, extra: &[(&str, &str)]) -> Bot {
        let log = std::fs::File::create(dir.join("bot.log")).expect("the bot log file");
        let mut cmd = Command::new(program);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .env("TELOXIDE_TOKEN", TOKEN)
            .env("TELOXIDE_API_URL", api.url())
            .env("DATABASE_PATH", dir.join("bot.sqlite3"))
            .env("RUST_LOG", "warn")
            .env_remove("WEBHOOK_URL")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the bot log file"))
            .stderr(log);
        for (key, value) in extra {
            cmd.env(key, value);
        }
        Bot { child: cmd.spawn().expect("the sme-advisor binary starts"), dir: dir.to_owned() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bot.log")).unwrap_or_default()
    }

    /// A message with the log if the process has ended.
    pub fn has_exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("the bot exited ({status}); its log:\n{}", self.log())),
            _ => None,
        }
    }

    /// Completes if the process ends.
    pub async fn exited(&mut self) -> String {
        loop {
            if let Some(message) = self.has_exited() {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the bot polls the fake server (60 s at most); the bot's log if it does not or
    /// exits first.
    pub async fn ready(&mut self, api: &crate::fake_bot_api::FakeBotApi) -> Result<(), String> {
        tokio::select! {
            ready = tokio::time::timeout(Duration::from_secs(60), api.wait_polling(Duration::from_secs(120))) => {
                ready.map_err(|_| format!("the bot did not poll within 60 s; its log:\n{}", self.log()))
            }
            message = self.exited() => Err(message),
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A positive number from the environment, or the default (with a note when it is malformed).
pub fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("{name}={v:?} is not a positive number; using {default}");
                default
            }
        },
        _ => default,
    }
}

// ----- /proc ---------------------------------------------------------------------------------

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces: field 3
    // (state) is index 0, so utime (field 14) is index 11 and stime (15) index 12.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// A `kB` line of /proc/<pid>/status, e.g. `VmHWM`.
pub fn status_kb(pid: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))?;
    line[key.len() + 1..].split_whitespace().next()?.parse().ok()
}

#[cfg(target_os = "linux")]
pub fn clock_ticks_per_second() -> u64 {
    unsafe extern "C" {
        safe fn sysconf(name: std::ffi::c_int) -> std::ffi::c_long;
    }
    const SC_CLK_TCK: std::ffi::c_int = 2;
    u64::try_from(sysconf(SC_CLK_TCK)).ok().filter(|&t| t > 0).unwrap_or(100)
}

#[cfg(not(target_os = "linux"))]
pub fn clock_ticks_per_second() -> u64 {
    100
}

/// The 1-minute load average: other work on the machine skews the figures.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

pub fn machine() -> (String, String) {
    let nproc = Command::new("nproc")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or("?".to_owned(), |n| n.to_string()));
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    (nproc, model)
}

// ----- report helpers -----

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn spread(values: &[Duration]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort();
    format!(
        "n {:>4}  p50 {:>7.2}  p90 {:>7.2}  p99 {:>7.2}  max {:>7.2} ms",
        sorted.len(),
        ms(percentile(&sorted, 0.50)),
        ms(percentile(&sorted, 0.90)),
        ms(percentile(&sorted, 0.99)),
        ms(sorted.last().copied().unwrap_or_default())
    )
}

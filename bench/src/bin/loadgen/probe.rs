//! What the operating system says about a process tree (and optionally the CPU time of a second
//! one, the sending node of a cluster): CPU time (utime + stime from
//! `/proc/PID/stat`) and resident memory (`VmRSS` from `/proc/PID/status`); and about the load
//! generator's own connections to it: the data segments the server sent on them (`TCP_INFO`).

use std::fs;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Mutex;
use std::time::Instant;

/// One reading of a process tree.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub at: Instant,
    /// User + system CPU time of every live process of the tree, in µs.
    pub cpu_us: u64,
    /// The system (kernel) part of `cpu_us`.
    pub sys_us: u64,
    /// Sum of the processes' VmRSS, in KiB.
    pub rss_kb: u64,
    /// TCP data segments received so far on the watched connections (what the server sent
    /// them: one per write of a small message, whatever system call made it).
    pub segments: u64,
    /// User + system CPU time of the other process tree (the sending node of a cluster), in µs;
    /// 0 without one.
    pub other_cpu_us: u64,
}

/// Reads a process and its descendants (the server), or nothing when no pid was given.
pub struct Probe {
    root: Option<u32>,
    /// A second server whose CPU is read beside (the sending node of a cluster).
    other: Option<u32>,
    us_per_tick: u64,
    /// The connections whose received segments are counted.
    watched: Mutex<Vec<RawFd>>,
}

impl Probe {
    pub fn new(root: Option<u32>, other: Option<u32>) -> Probe {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let hz = if hz > 0 { hz as u64 } else { 100 };
        Probe {
            root,
            other,
            us_per_tick: 1_000_000 / hz,
            watched: Mutex::new(Vec::new()),
        }
    }

    /// Counts the segments the server sends on these connections from now on (they must stay
    /// open while the probe is sampled).
    pub fn watch(&self, conns: &[crate::conn::Ws]) {
        let mut w = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        w.extend(conns.iter().map(|c| c.get_ref().as_raw_fd()));
    }

    /// Data segments received so far on the watched connections.
    fn segments_in(&self) -> u64 {
        let w = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        w.iter().map(|&fd| data_segments_in(fd).unwrap_or(0)).sum()
    }

    /// Fails when the server process is gone.
    pub fn sample(&self) -> Result<Sample, String> {
        let at = Instant::now();
        let Some(root) = self.root else {
            return Ok(Sample {
                at,
                cpu_us: 0,
                sys_us: 0,
                rss_kb: 0,
                segments: self.segments_in(),
                other_cpu_us: 0,
            });
        };
        let (mut cpu_ticks, mut sys_ticks) = (0, 0);
        let mut rss_kb = 0;
        for pid in tree(root) {
            // A descendant may exit between the listing and the reading.
            if let Some(st) = read_stat(pid) {
                cpu_ticks += st.ticks;
                sys_ticks += st.sys_ticks;
                rss_kb += vm_rss_kb(pid).unwrap_or(0);
            } else if pid == root {
                return Err(format!("server process {root} is gone"));
            }
        }
        let mut other_ticks = 0;
        if let Some(other) = self.other {
            for pid in tree(other) {
                if let Some(st) = read_stat(pid) {
                    other_ticks += st.ticks;
                } else if pid == other {
                    return Err(format!("server process {other} is gone"));
                }
            }
        }
        Ok(Sample {
            at,
            cpu_us: cpu_ticks * self.us_per_tick,
            sys_us: sys_ticks * self.us_per_tick,
            rss_kb,
            segments: self.segments_in(),
            other_cpu_us: other_ticks * self.us_per_tick,
        })
    }

    /// CPU time this process (the load generator) has used, in µs.
    pub fn self_cpu_us(&self) -> u64 {
        read_stat(std::process::id()).map_or(0, |s| s.ticks * self.us_per_tick)
    }
}

struct Stat {
    ppid: u32,
    /// utime + stime.
    ticks: u64,
    sys_ticks: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12).
    let sys_ticks = f.get(12)?.parse::<u64>().ok()?;
    Some(Stat {
        ppid: f.get(1)?.parse().ok()?,
        ticks: f.get(11)?.parse::<u64>().ok()? + sys_ticks,
        sys_ticks,
    })
}

/// `tcpi_data_segs_in` of a TCP socket: the segments with data it received.
fn data_segments_in(fd: RawFd) -> Option<u64> {
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(info.tcpi_data_segs_in as u64)
}

fn vm_rss_kb(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `root` and every process descending from it.
fn tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                if let Some(st) = read_stat(pid) {
                    parents.push((pid, st.ppid));
                }
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

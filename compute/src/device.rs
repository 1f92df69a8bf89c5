//! Which device the engine runs on: `--device cpu|cuda|cuda:N`, and the fallback to the CPU
//! when a GPU was asked for but cannot be used (no `cuda` feature, no driver, no such GPU).

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A compute device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// The CPU kernels (always available).
    Cpu,
    /// The CUDA GPU with this ordinal.
    Cuda(usize),
}

impl Device {
    /// What a node picks when nothing is asked: the first GPU in a `cuda` build, else the
    /// CPU.
    pub fn default_for_build() -> Device {
        if cfg!(feature = "cuda") {
            Device::Cuda(0)
        } else {
            Device::Cpu
        }
    }

    /// The device that will actually be used for `self`, and — when that is not `self` — a
    /// sentence for the log saying why it fell back to the CPU.
    pub fn resolve(self) -> (Device, Option<String>) {
        match self {
            Device::Cpu => (Device::Cpu, None),
            Device::Cuda(n) => match probe(n) {
                Ok(()) => (self, None),
                Err(e) => (
                    Device::Cpu,
                    Some(format!("cuda:{n} is not usable ({e}); running on the CPU")),
                ),
            },
        }
    }
}

#[cfg(feature = "cuda")]
fn probe(n: usize) -> Result<()> {
    crate::cuda::probe(n).map(|_| ())
}

#[cfg(not(feature = "cuda"))]
fn probe(_n: usize) -> Result<()> {
    Err(Error::Device(
        "this binary was built without the cuda feature".into(),
    ))
}

impl FromStr for Device {
    type Err = Error;

    fn from_str(s: &str) -> Result<Device> {
        let s = s.trim();
        match s {
            "cpu" => return Ok(Device::Cpu),
            "cuda" | "gpu" => return Ok(Device::Cuda(0)),
            _ => {}
        }
        s.strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| {
                Error::BadRequest(format!("device {s:?} is not one of cpu, cuda, cuda:N"))
            })
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        for (s, d) in [
            ("cpu", Device::Cpu),
            ("cuda", Device::Cuda(0)),
            ("cuda:3", Device::Cuda(3)),
        ] {
            assert_eq!(s.parse::<Device>().expect("parses"), d);
        }
        assert_eq!(Device::Cuda(2).to_string(), "cuda:2");
        for bad in ["", "cuda:", "cuda:x", "tpu", "cuda:-1"] {
            assert!(bad.parse::<Device>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cpu_needs_no_probe_and_a_missing_gpu_falls_back() {
        assert_eq!(Device::Cpu.resolve(), (Device::Cpu, None));
        // No GPU has ordinal 4096: whatever this machine has, the answer is the CPU, with a
        // reason.
        let (d, why) = Device::Cuda(4096).resolve();
        assert_eq!(d, Device::Cpu);
        assert!(why.is_some_and(|w| w.contains("cuda:4096")));
    }
}

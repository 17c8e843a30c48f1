//! One `servers:` line of a nutcracker pool, split as twemproxy splits it.

use core::fmt;

use super::DEFAULT_PORT;

/// One `servers:` entry of a nutcracker pool, `host:port:weight [name]` or
/// `/path/to/socket:weight [name]`, split as twemproxy splits it: from the end,
/// the name after the last space, then the weight after the last `:`, then the
/// port after the `:` before it (so an IPv6 host keeps its colons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServerLine<'a> {
    /// The host (or the socket's path), as written.
    pub host: &'a [u8],
    /// The port as written (`None` for a UNIX socket).
    pub port_text: Option<&'a [u8]>,
    /// The port's value (0 for a UNIX socket).
    pub port: u16,
    /// The weight, at least 1.
    pub weight: u32,
    /// The name after the space, if any.
    pub name: Option<&'a [u8]>,
    /// The line without ` name` and without `:weight`: `host:port`, or the path.
    pub address: &'a [u8],
    /// The identity string exactly as twemproxy forms it (see [`identity`](Self::identity)).
    identity: &'a [u8],
}

/// Why a server line is not `host:port:weight [name]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ServerLineError {
    /// Not `host:port:weight [name]` nor `/path:weight [name]`.
    Format,
    /// The weight is not a decimal integer (or above `u32::MAX`).
    BadWeight,
    /// Weight 0.
    ZeroWeight,
    /// The port is not a decimal integer in `1..=65535`.
    BadPort,
    /// The name after the space is empty.
    EmptyName,
}

impl fmt::Display for ServerLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerLineError::Format => {
                "not a \"host:port:weight [name]\" or \"/path/unix_socket:weight [name]\" server"
            }
            ServerLineError::BadWeight => "invalid weight in \"host:port:weight [name]\"",
            ServerLineError::ZeroWeight => "zero weight in \"host:port:weight [name]\"",
            ServerLineError::BadPort => "invalid port in \"host:port:weight [name]\"",
            ServerLineError::EmptyName => "empty name after \"host:port:weight \"",
        })
    }
}

impl core::error::Error for ServerLineError {}

/// twemproxy's `nc_atoi`: decimal digits only, at least one.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |v, &c| {
        c.is_ascii_digit().then(|| v * 10 + u64::from(c - b'0'))
    })
}

impl<'a> ServerLine<'a> {
    /// Splits one server entry (the YAML scalar, without the `- `).
    ///
    /// # Errors
    /// [`ServerLineError`] for what twemproxy would reject.
    pub fn parse(line: &'a [u8]) -> Result<Self, ServerLineError> {
        let unix = line.first() == Some(&b'/');
        let (rest, name) = match line.iter().rposition(|&b| b == b' ') {
            Some(sp) => {
                let name = line.get(sp + 1..).unwrap_or(&[]);
                if name.is_empty() {
                    return Err(ServerLineError::EmptyName);
                }
                (line.get(..sp).unwrap_or(&[]), Some(name))
            }
            None => (line, None),
        };
        let colon = rest
            .iter()
            .rposition(|&b| b == b':')
            .ok_or(ServerLineError::Format)?;
        let weight_text = rest.get(colon + 1..).unwrap_or(&[]);
        let address = rest.get(..colon).unwrap_or(&[]);
        let weight = parse_decimal(weight_text)
            .and_then(|w| u32::try_from(w).ok())
            .ok_or(ServerLineError::BadWeight)?;
        if weight == 0 {
            return Err(ServerLineError::ZeroWeight);
        }
        let (host, port_text, port, identity) = if unix {
            if address.contains(&b':') {
                return Err(ServerLineError::Format);
            }
            // twemproxy's identity for an unnamed socket is the path plus the
            // `:` before the weight (its length arithmetic counts an empty port).
            (address, None, 0, rest.get(..=colon).unwrap_or(rest))
        } else {
            let pc = address
                .iter()
                .rposition(|&b| b == b':')
                .ok_or(ServerLineError::Format)?;
            let host = address.get(..pc).unwrap_or(&[]);
            let port_text = address.get(pc + 1..).unwrap_or(&[]);
            let port = parse_decimal(port_text)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p != 0)
                .ok_or(ServerLineError::BadPort)?;
            let identity = if port == DEFAULT_PORT { host } else { address };
            (host, Some(port_text), port, identity)
        };
        Ok(Self {
            host,
            port_text,
            port,
            weight,
            name,
            address,
            identity: name.unwrap_or(identity),
        })
    }

    /// The string twemproxy hashes for this server's points: its name when it
    /// has one; else `host:port` as written, or the host alone when the port is
    /// 11211 (libmemcached's convention).
    #[must_use]
    pub const fn identity(&self) -> &'a [u8] {
        self.identity
    }

    /// How a user names this server: its name, else `host:port` as written.
    #[must_use]
    pub fn label(&self) -> &'a [u8] {
        self.name.unwrap_or(self.address)
    }
}

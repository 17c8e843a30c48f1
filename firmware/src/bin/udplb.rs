//! `udplb`: a memcached UDP balancer on the QEMU board `mps2-an386`
//! (Cortex-M4F) and its LAN9118 Ethernet controller.
//!
//! - The network: the LAN9118 at `0x4020_0000` through the firmware's driver
//!   (`chring_firmware::lan9118`), under smoltcp (Ethernet, ARP, IPv4, UDP; no
//!   heap: every buffer is a static). Static address 10.0.2.15/24, gateway
//!   10.0.2.2 (QEMU's user networking: the host's 127.0.0.1 is 10.0.2.2).
//! - Clients send memcached UDP requests to port 11211; the device forwards
//!   them to the memcached servers from port 11212 and relays the replies
//!   (`chring_firmware::udplb`).
//! - The fleet comes over UART0 (`0x4000_4000`): chring's control protocol,
//!   `ADD_SERVER a.b.c.d:port [weight]`, `REMOVE_SERVER`, `DOWN`/`UP`,
//!   `SERVERS`, `ROUTE`, `STRATEGY ketama|ring`, `STATS`; one reply per line.
//! - The clock: SysTick at 1 kHz (smoltcp's timestamps, the pending table's TTL).
//! - The log: defmt over semihosting (stdout): a banner, the memory, and a
//!   `footprint` line at every `STATS`.
//!
//! It never exits by itself; QEMU is stopped by whoever started it. A panic or
//! HardFault logs and exits through semihosting with failure.

#![no_std]
#![no_main]
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicU32, Ordering};

use chring::Instant;
use chring::protocol::LineBuffer;
use chring_firmware::lan9118::{Lan9118, Lan9118Phy};
use chring_firmware::memcache::MAX_DATAGRAM;
use chring_firmware::uart::CmsdkUart;
use chring_firmware::udplb::{Endpoint, To, Udplb};
use cortex_m_rt::entry;
use defmt::{error, info};
use defmt_semihosting as _;
use embedded_io::{Read, ReadReady, Write};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::udp;
use smoltcp::time::Instant as NetInstant;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address};

use mps2::{BAUD, SYSCLK_HZ, UART0, fail, now};

/// The LAN9118 of the MPS2 boards.
const LAN9118: usize = 0x4020_0000;
/// A locally administered MAC address.
const MAC: [u8; 6] = [0x02, 0x00, 0x63, 0x68, 0x72, 0x01];
/// QEMU user networking's guest address and gateway (the host).
const IP: [u8; 4] = [10, 0, 2, 15];
const GATEWAY: [u8; 4] = [10, 0, 2, 2];
/// Clients' port, and the port requests leave from towards the servers.
const CLIENT_PORT: u16 = 11211;
const UPSTREAM_PORT: u16 = 11212;
/// The longest control line.
const LINE: usize = 64;

fn ip4(a: [u8; 4]) -> Ipv4Address {
    Ipv4Address::new(a[0], a[1], a[2], a[3])
}

/// The balancer's endpoint of a smoltcp one (IPv4 is the only protocol built).
fn endpoint(e: IpEndpoint) -> Endpoint {
    let IpAddress::Ipv4(a) = e.addr;
    Endpoint {
        addr: a.octets(),
        port: e.port,
    }
}

/// Datagrams the sockets' send buffers could not take (the client retries).
static TX_FULL: AtomicU32 = AtomicU32::new(0);

fn send(sockets: &mut SocketSet<'_>, handles: (SocketHandle, SocketHandle), to: To, bytes: &[u8]) {
    let (handle, ep) = match to {
        To::Client(e) => (handles.0, e),
        To::Server(e) => (handles.1, e),
    };
    let dest = IpEndpoint::new(IpAddress::Ipv4(ip4(ep.addr)), ep.port);
    if sockets
        .get_mut::<udp::Socket>(handle)
        .send_slice(bytes, dest)
        .is_err()
    {
        TX_FULL.fetch_add(1, Ordering::Relaxed);
    }
}

#[entry]
fn main() -> ! {
    let Some(mut core) = cortex_m::Peripherals::take() else {
        fail("no core peripherals")
    };
    mps2::start_clock(&mut core.SYST);

    let (Some(lb), Some(bufs)) = (mmio::balancer(), mmio::buffers()) else {
        fail("statics already taken")
    };
    let nic = match Lan9118::new(mps2::Regs::at(LAN9118), MAC) {
        Ok(n) => n,
        Err(e) => {
            error!("LAN9118 at {=usize:#x}: {}", LAN9118, e);
            fail("no network")
        }
    };
    let mut dev = Lan9118Phy::new(nic);
    let t0 = NetInstant::from_millis(i64::from(now()));
    let mut iface = Interface::new(Config::new(EthernetAddress(MAC).into()), &mut dev, t0);
    iface.update_ip_addrs(|a| {
        let _ = a.push(IpCidr::new(IpAddress::Ipv4(ip4(IP)), 24));
    });
    let _ = iface.routes_mut().add_default_ipv4_route(ip4(GATEWAY));

    let mmio::Buffers {
        storage,
        client_rx_meta,
        client_rx,
        client_tx_meta,
        client_tx,
        up_rx_meta,
        up_rx,
        up_tx_meta,
        up_tx,
    } = bufs;
    let mut client = udp::Socket::new(
        udp::PacketBuffer::new(&mut client_rx_meta[..], &mut client_rx[..]),
        udp::PacketBuffer::new(&mut client_tx_meta[..], &mut client_tx[..]),
    );
    let mut upstream = udp::Socket::new(
        udp::PacketBuffer::new(&mut up_rx_meta[..], &mut up_rx[..]),
        udp::PacketBuffer::new(&mut up_tx_meta[..], &mut up_tx[..]),
    );
    if client.bind(CLIENT_PORT).is_err() || upstream.bind(UPSTREAM_PORT).is_err() {
        fail("cannot bind the UDP ports");
    }
    let mut sockets = SocketSet::new(&mut storage[..]);
    let handles = (sockets.add(client), sockets.add(upstream));

    let mut uart = CmsdkUart::new(mps2::Regs::at(UART0), SYSCLK_HZ / BAUD);
    let mut line: LineBuffer<LINE> = LineBuffer::new();
    info!(
        "chring udplb: memcached UDP on 10.0.2.15:{=u16} (LAN9118, MAC {=[u8]:02x}), servers reached from port {=u16}; fleet over UART0",
        CLIENT_PORT,
        MAC[..],
        UPSTREAM_PORT
    );
    info!(
        "memory: balancer {=usize} B, socket buffers {=usize} B, NIC buffers {=usize} B; static {=u32} B, peak stack so far {=u32} B",
        core::mem::size_of::<Udplb>(),
        core::mem::size_of::<mmio::Buffers>(),
        core::mem::size_of_val(&dev),
        mps2::statics(),
        mps2::peak_stack()
    );

    let mut scratch = [0u8; MAX_DATAGRAM];
    loop {
        let t = now();
        let stamp = NetInstant::from_millis(i64::from(t));
        iface.poll(stamp, &mut dev, &mut sockets);
        // Requests from clients, then replies from servers.
        for (handle, from_client) in [(handles.0, true), (handles.1, false)] {
            loop {
                let got = sockets
                    .get_mut::<udp::Socket>(handle)
                    .recv_slice(&mut scratch);
                // A datagram longer than `scratch` is dropped by smoltcp (and
                // counted by nobody): memcached's are at most MAX_DATAGRAM.
                let Ok((n, meta)) = got else { break };
                let from = endpoint(meta.endpoint);
                let datagram = scratch.get(..n).unwrap_or(&[]);
                let mut out = |to: To, bytes: &[u8]| send(&mut sockets, handles, to, bytes);
                if from_client {
                    lb.on_client(from, datagram, Instant(t), &mut out);
                } else {
                    lb.on_server(from, datagram, Instant(t), &mut out);
                }
            }
        }
        iface.poll(stamp, &mut dev, &mut sockets);

        // Control lines, as far as bytes are waiting.
        while uart.read_ready().unwrap_or(false) {
            let mut byte = [0u8; 1];
            if uart.read(&mut byte).unwrap_or(0) == 0 {
                break;
            }
            let Some(l) = line.push(byte[0]) else {
                continue;
            };
            let nic = dev.nic().stats();
            let (statics, stack) = (mps2::statics(), mps2::peak_stack());
            let extra = [
                ("rx_frames", u64::from(nic.rx_frames)),
                ("rx_dropped", u64::from(nic.rx_dropped)),
                ("tx_frames", u64::from(nic.tx_frames)),
                ("tx_dropped", u64::from(nic.tx_dropped)),
                ("tx_full", u64::from(TX_FULL.load(Ordering::Relaxed))),
                ("static_ram", u64::from(statics)),
                ("peak_stack", u64::from(stack)),
            ];
            let is_stats = matches!(&l, Ok(b) if b.eq_ignore_ascii_case(b"STATS"));
            let mut reply = Sink(&mut uart);
            let _ = lb.control(l, &extra, &mut reply);
            if is_stats {
                let c = lb.counters();
                info!(
                    "stats: {=u64} requests, {=u64} forwarded, {=u64} replies, {=u64} merged, {=u64} errors, {=u64} expired; NIC rx {=u32} tx {=u32}",
                    c.requests,
                    c.forwarded,
                    c.replies,
                    c.merged,
                    c.errors,
                    c.expired,
                    nic.rx_frames,
                    nic.tx_frames
                );
                info!(
                    "footprint: RAM {=u32} B of {=u32}: static {=u32} B + peak stack {=u32} B",
                    statics + stack,
                    mps2::ram_size(),
                    statics,
                    stack
                );
            }
        }
    }
}

/// `core::fmt::Write` on the UART (errors are `Infallible`).
struct Sink<'a, W: Write>(&'a mut W);

impl<W: Write> core::fmt::Write for Sink<'_, W> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.write_all(s.as_bytes()).map_err(|_| core::fmt::Error)
    }
}

// Panic and HardFault handlers.
#[path = "shared/rt.rs"]
mod rt;

// SysTick, the register blocks, the RAM measurement.
#[path = "shared/mps2.rs"]
mod mps2;

/// The balancer's and the sockets' statics: with `mps2`, the only `unsafe`.
#[allow(unsafe_code)]
mod mmio {
    use core::ptr;
    use core::sync::atomic::{AtomicBool, Ordering};

    use chring_firmware::udplb::Udplb;
    use smoltcp::iface::SocketStorage;
    use smoltcp::socket::udp::PacketMetadata;

    /// Datagrams each socket buffer holds, at most.
    const META: usize = 32;

    /// smoltcp's socket storage and the two UDP sockets' buffers (no heap).
    pub(super) struct Buffers {
        pub(super) storage: [SocketStorage<'static>; 2],
        pub(super) client_rx_meta: [PacketMetadata; META],
        pub(super) client_rx: [u8; 2048],
        pub(super) client_tx_meta: [PacketMetadata; META],
        pub(super) client_tx: [u8; 4096],
        pub(super) up_rx_meta: [PacketMetadata; META],
        pub(super) up_rx: [u8; 4096],
        pub(super) up_tx_meta: [PacketMetadata; META],
        pub(super) up_tx: [u8; 2048],
    }

    static mut BALANCER: Udplb = Udplb::new();
    static mut BUFFERS: Buffers = Buffers {
        storage: [SocketStorage::EMPTY; 2],
        client_rx_meta: [PacketMetadata::EMPTY; META],
        client_rx: [0; 2048],
        client_tx_meta: [PacketMetadata::EMPTY; META],
        client_tx: [0; 4096],
        up_rx_meta: [PacketMetadata::EMPTY; META],
        up_rx: [0; 4096],
        up_tx_meta: [PacketMetadata::EMPTY; META],
        up_tx: [0; 2048],
    };
    static TAKEN: AtomicBool = AtomicBool::new(false);
    static TAKEN_BUFFERS: AtomicBool = AtomicBool::new(false);

    /// The balancer, once (like `cortex_m::singleton!`, but initialised from a
    /// constant: built on the stack, the ~30 KiB balancer would be copied by
    /// moves).
    pub(super) fn balancer() -> Option<&'static mut Udplb> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: `TAKEN` lets this line run once, so this is the only
        // reference to `BALANCER` ever made, and nothing else names it.
        Some(unsafe { &mut *ptr::addr_of_mut!(BALANCER) })
    }

    /// The socket buffers, once.
    pub(super) fn buffers() -> Option<&'static mut Buffers> {
        if TAKEN_BUFFERS.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: as for `balancer`, with `TAKEN_BUFFERS`.
        Some(unsafe { &mut *ptr::addr_of_mut!(BUFFERS) })
    }
}

//! A small deterministic random source for the generated round-trip tests.

/// xorshift64*: deterministic, seedable, dependency-free.
#[allow(dead_code)] // each generated type uses only some of the value kinds
pub(crate) struct Rng(u64);

#[allow(dead_code)]
impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// True one time in `n`.
    pub(crate) fn chance(&mut self, n: u64) -> bool {
        self.u64() % n == 0
    }

    pub(crate) fn bool(&mut self) -> bool {
        self.u64() & 1 == 1
    }

    pub(crate) fn len(&mut self, max: u64) -> usize {
        (self.u64() % (max + 1)) as usize
    }

    pub(crate) fn f64(&mut self) -> f64 {
        (self.u64() >> 11) as f64 / 1024.0 - 1e12
    }

    pub(crate) fn uuid(&mut self) -> crate::Uuid {
        let a = self.u64().to_be_bytes();
        let b = self.u64().to_be_bytes();
        let mut u = [0u8; 16];
        u[..8].copy_from_slice(&a);
        u[8..].copy_from_slice(&b);
        crate::Uuid(u)
    }

    pub(crate) fn string(&mut self) -> String {
        let n = self.len(12);
        (0..n)
            .map(|_| char::from(b'a' + (self.u64() % 26) as u8))
            .collect()
    }

    pub(crate) fn bytes(&mut self) -> bytes::Bytes {
        let n = self.len(40);
        (0..n).map(|_| self.u64() as u8).collect::<Vec<u8>>().into()
    }
}

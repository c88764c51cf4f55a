//! Tweak components (`pv_mem_meta`) and what they say about each 4 KiB page.

/// Flag bits of byte 15 of a special tweak component (confirmed with zgetdump, formats.md G).
/// Flag: the page is all zeros.
pub const FLAG_ZERO: u8 = 0x01;
/// Flag: the page is shared (not secure): the file holds plaintext.
pub const FLAG_SHARED: u8 = 0x02;
/// Flag: the page was mapped (informational).
pub const FLAG_MAPPED: u8 = 0x04;
/// Bits of byte 15 that must be zero.
pub const FLAG_RESERVED: u8 = 0xf8;
/// Bytes 0..4 of a component that is not a tweak.
pub const SPECIAL_INDICATOR: [u8; 4] = [0xff; 4];

/// What the Ultravisor says about one guest page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageState {
    /// Exported secure page: the file holds AES-XTS ciphertext; the 16 bytes are the tweak
    /// component (ORed with the nonce from the completion data to form the XTS tweak).
    Encrypted {
        /// The tweak component.
        component: [u8; 16],
    },
    /// The page is all zeros; the bytes in the file are meaningless.
    Zero {
        /// The mapped flag was set.
        mapped: bool,
    },
    /// A shared (non-secure) page: the file holds plaintext.
    Shared {
        /// The mapped flag was set.
        mapped: bool,
    },
}

/// Why a special component is not a valid page state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPageState {
    #[error("neither the zero (0x01), shared (0x02) nor mapped (0x04) flag is set in byte 15")]
    /// No state flag at all.
    NoFlag,
    #[error("only the mapped flag (0x04) is set; a page must be zero or shared")]
    /// Only the informational mapped flag.
    MappedOnly,
    #[error("both the zero (0x01) and shared (0x02) flags are set")]
    /// Two exclusive states.
    ZeroAndShared,
    #[error("reserved bits {0:#04x} of byte 15 are set")]
    /// Reserved flag bits set.
    ReservedBits(u8),
    #[error("reserved byte 14 is {0:#04x}, must be 0")]
    /// Reserved byte 14 not zero.
    ReservedByte(u8),
}

impl PageState {
    /// Classifies one 16-byte tweak component exactly as the Ultravisor defines it.
    pub fn classify(component: &[u8; 16]) -> Result<PageState, InvalidPageState> {
        if component[..4] != SPECIAL_INDICATOR {
            return Ok(PageState::Encrypted { component: *component });
        }
        let flags = component[15];
        if component[14] != 0 {
            return Err(InvalidPageState::ReservedByte(component[14]));
        }
        if flags & FLAG_RESERVED != 0 {
            return Err(InvalidPageState::ReservedBits(flags & FLAG_RESERVED));
        }
        let mapped = flags & FLAG_MAPPED != 0;
        match (flags & FLAG_ZERO != 0, flags & FLAG_SHARED != 0) {
            (true, true) => Err(InvalidPageState::ZeroAndShared),
            (true, false) => Ok(PageState::Zero { mapped }),
            (false, true) => Ok(PageState::Shared { mapped }),
            (false, false) if mapped => Err(InvalidPageState::MappedOnly),
            (false, false) => Err(InvalidPageState::NoFlag),
        }
    }

    /// Builds the component that encodes this state (the inverse of [`PageState::classify`]).
    pub fn to_component(&self) -> [u8; 16] {
        let special = |flag: u8, mapped: bool| {
            let mut c = [0u8; 16];
            c[..4].copy_from_slice(&SPECIAL_INDICATOR);
            c[15] = flag | if mapped { FLAG_MAPPED } else { 0 };
            c
        };
        match *self {
            PageState::Encrypted { component } => component,
            PageState::Zero { mapped } => special(FLAG_ZERO, mapped),
            PageState::Shared { mapped } => special(FLAG_SHARED, mapped),
        }
    }
}

/// How many pages of each kind a dump holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageCounts {
    /// Encrypted (secure) pages.
    pub encrypted: u64,
    /// Zero pages.
    pub zero: u64,
    /// Shared (plaintext) pages.
    pub shared: u64,
    /// Zero or shared pages that also carry the mapped flag.
    pub mapped_flag: u64,
    /// Pages past p_filesz of a PT_LOAD (zero-filled, no component needed).
    pub unbacked: u64,
}

impl PageCounts {
    /// Adds one classified page.
    pub fn add(&mut self, state: &PageState) {
        match *state {
            PageState::Encrypted { .. } => self.encrypted += 1,
            PageState::Zero { mapped } => {
                self.zero += 1;
                self.mapped_flag += u64::from(mapped);
            }
            PageState::Shared { mapped } => {
                self.shared += 1;
                self.mapped_flag += u64::from(mapped);
            }
        }
    }

    /// All pages with a component.
    pub fn total(&self) -> u64 {
        self.encrypted + self.zero + self.shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn special(b14: u8, flags: u8) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[..4].copy_from_slice(&SPECIAL_INDICATOR);
        c[14] = b14;
        c[15] = flags;
        c
    }

    #[test]
    fn every_component_form_is_classified() {
        let tweak = [0x12; 16];
        assert_eq!(
            PageState::classify(&tweak),
            Ok(PageState::Encrypted { component: tweak })
        );
        // Three 0xff bytes are still a tweak: the indicator is all four.
        let mut almost = [0xffu8; 16];
        almost[3] = 0xfe;
        assert!(matches!(PageState::classify(&almost), Ok(PageState::Encrypted { .. })));
        assert_eq!(
            PageState::classify(&special(0, 0x01)),
            Ok(PageState::Zero { mapped: false })
        );
        assert_eq!(
            PageState::classify(&special(0, 0x05)),
            Ok(PageState::Zero { mapped: true })
        );
        assert_eq!(
            PageState::classify(&special(0, 0x02)),
            Ok(PageState::Shared { mapped: false })
        );
        assert_eq!(
            PageState::classify(&special(0, 0x06)),
            Ok(PageState::Shared { mapped: true })
        );
        assert_eq!(PageState::classify(&special(0, 0)), Err(InvalidPageState::NoFlag));
        assert_eq!(
            PageState::classify(&special(0, 0x04)),
            Err(InvalidPageState::MappedOnly)
        );
        assert_eq!(
            PageState::classify(&special(0, 0x03)),
            Err(InvalidPageState::ZeroAndShared)
        );
        assert_eq!(
            PageState::classify(&special(0, 0x81)),
            Err(InvalidPageState::ReservedBits(0x80))
        );
        assert_eq!(
            PageState::classify(&special(7, 0x01)),
            Err(InvalidPageState::ReservedByte(7))
        );
    }

    #[test]
    fn to_component_is_the_inverse_of_classify() {
        for s in [
            PageState::Encrypted { component: [9; 16] },
            PageState::Zero { mapped: false },
            PageState::Zero { mapped: true },
            PageState::Shared { mapped: false },
            PageState::Shared { mapped: true },
        ] {
            assert_eq!(PageState::classify(&s.to_component()), Ok(s));
        }
    }

    #[test]
    fn counts_add_up() {
        let mut c = PageCounts::default();
        for s in [
            PageState::Encrypted { component: [0; 16] },
            PageState::Zero { mapped: true },
            PageState::Shared { mapped: false },
            PageState::Shared { mapped: true },
        ] {
            c.add(&s);
        }
        assert_eq!(
            (c.encrypted, c.zero, c.shared, c.mapped_flag, c.total()),
            (1, 1, 2, 2, 4)
        );
    }
}

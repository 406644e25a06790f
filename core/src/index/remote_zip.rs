//! One member of a zip archive (a wheel's `METADATA`, a zip sdist's `PKG-INFO`) read through
//! byte ranges, so that a remote wheel costs its tail and one member instead of the whole file.
//!
//! ```text
//! [local header + data]…  [central directory]  [zip64 EOCD] [zip64 locator] [EOCD + comment]
//!        ▲ 3: the member             ▲ 2: if not in the tail      ▲ 1: the tail (64 KiB)
//! ```
//!
//! 1. The last [`TAIL`] bytes hold the end of central directory record (and, for zip64, its
//!    locator and record) and, for most wheels, the whole central directory.
//! 2. The central directory gives each member's offset, sizes, method and CRC; it is read with
//!    a second range when the tail does not hold it.
//! 3. The member's bytes end where the next member (or the directory) starts, so one range
//!    covers its local header, data and any data descriptor.
//!
//! Every offset and length comes from untrusted bytes: each is checked against what was read
//! (a short or lying archive is a [`ZipError`], never a panic), and the member is checked
//! against the directory's size and CRC-32 after it is inflated.
use std::io::Read;

/// Bytes read from the end first: the end of central directory record with the longest
/// comment allowed (65 535 bytes) fits, and so does the central directory of most wheels.
pub(super) const TAIL: u64 = 64 << 10;
/// Largest central directory accepted (a wheel of 100 000 files has about 10 MiB).
const MAX_DIRECTORY: u64 = 64 << 20;
/// Largest member accepted (compressed or not): metadata files are a few KiB to a few hundred.
pub(super) const MAX_MEMBER: u64 = 16 << 20;

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;

/// An archive that cannot be read.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum ZipError {
    /// Something is missing or inconsistent.
    #[error("not a readable zip archive: {0}")]
    Malformed(&'static str),
    /// No member fits what was asked for.
    #[error("no `{0}` in the archive")]
    NoMember(&'static str),
    /// A method other than stored or deflate.
    #[error("`{name}` uses compression method {method}; only stored (0) and deflate (8) are read")]
    Method {
        /// The member.
        name: String,
        /// The method number.
        method: u16,
    },
    /// Too large to read.
    #[error("`{0}` is larger than {MAX_MEMBER} bytes")]
    TooLarge(String),
    /// The member's bytes do not match the directory.
    #[error("`{0}` does not match its size or CRC-32 in the central directory")]
    Corrupt(String),
}

/// Where the bytes come from.
pub(super) trait ReadAt {
    /// A failure to read.
    type Error;
    /// The last `n` bytes (all of them when the file is shorter) and the file's length.
    fn tail(&mut self, n: u64) -> Result<(Vec<u8>, u64), Self::Error>;
    /// Bytes `start..end`.
    fn range(&mut self, start: u64, end: u64) -> Result<Vec<u8>, Self::Error>;
}

/// A failure of [`read_member`]: reading, or the archive.
#[derive(Debug)]
pub(super) enum MemberError<E> {
    Read(E),
    Zip(ZipError),
}

impl<E> From<ZipError> for MemberError<E> {
    fn from(e: ZipError) -> Self {
        Self::Zip(e)
    }
}

/// Bytes in memory (a whole wheel or sdist).
impl ReadAt for &[u8] {
    type Error = std::convert::Infallible;
    fn tail(&mut self, n: u64) -> Result<(Vec<u8>, u64), Self::Error> {
        let len = self.len() as u64;
        let start = usize::try_from(len.saturating_sub(n)).unwrap_or(0);
        Ok((self.get(start..).unwrap_or_default().to_vec(), len))
    }
    fn range(&mut self, start: u64, end: u64) -> Result<Vec<u8>, Self::Error> {
        let (Ok(s), Ok(e)) = (usize::try_from(start), usize::try_from(end)) else {
            return Ok(Vec::new());
        };
        Ok(self.get(s..e.min(self.len())).unwrap_or_default().to_vec())
    }
}

/// A local file, read in place.
impl ReadAt for fs_err::File {
    type Error = std::io::Error;
    fn tail(&mut self, n: u64) -> Result<(Vec<u8>, u64), Self::Error> {
        let len = self.metadata()?.len();
        let start = len.saturating_sub(n);
        Ok((self.range(start, len)?, len))
    }
    fn range(&mut self, start: u64, end: u64) -> Result<Vec<u8>, Self::Error> {
        use std::io::{Seek, SeekFrom};
        self.seek(SeekFrom::Start(start))?;
        let mut out = Vec::new();
        self.by_ref()
            .take(end.saturating_sub(start))
            .read_to_end(&mut out)?;
        Ok(out)
    }
}

/// One entry of the central directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Member {
    pub(super) name: String,
    method: u16,
    crc32: u32,
    compressed: u64,
    uncompressed: u64,
    /// Offset of its local header.
    offset: u64,
}

/// Which member to read.
#[derive(Clone, Copy, Debug)]
pub(super) enum Wanted<'a> {
    /// `{dir}.dist-info/METADATA` of a wheel; with several, the one of `{name}-{version}` (as
    /// the wheel's file name writes them).
    WheelMetadata { name: &'a str, version: &'a str },
    /// `{dir}/PKG-INFO` at the top of an sdist.
    PkgInfo,
}

impl Wanted<'_> {
    fn label(self) -> &'static str {
        match self {
            Wanted::WheelMetadata { .. } => "*.dist-info/METADATA",
            Wanted::PkgInfo => "*/PKG-INFO",
        }
    }

    fn choose(self, members: &[Member]) -> Option<&Member> {
        match self {
            Wanted::WheelMetadata { name, version } => {
                let candidates: Vec<&Member> = members
                    .iter()
                    .filter(|m| {
                        m.name
                            .strip_suffix(".dist-info/METADATA")
                            .is_some_and(|dir| !dir.is_empty() && !dir.contains('/'))
                    })
                    .collect();
                let wanted = format!("{name}-{version}.dist-info/METADATA");
                let normalized = |s: &str| s.to_ascii_lowercase().replace(['-', '.'], "_");
                candidates
                    .iter()
                    .find(|m| normalized(&m.name) == normalized(&wanted))
                    .or(candidates.first())
                    .copied()
            }
            Wanted::PkgInfo => members.iter().find(|m| {
                m.name
                    .strip_suffix("/PKG-INFO")
                    .is_some_and(|dir| !dir.is_empty() && !dir.contains('/'))
            }),
        }
    }
}

/// Reads the member `wanted` from `source`: the tail, the central directory when the tail does
/// not hold it, then the member.
pub(super) fn read_member<R: ReadAt>(
    source: &mut R,
    wanted: Wanted<'_>,
) -> Result<Vec<u8>, MemberError<R::Error>> {
    let (tail, total) = source.tail(TAIL).map_err(MemberError::Read)?;
    let tail_start = total.saturating_sub(tail.len() as u64);
    let (cd_offset, cd_size) = find_directory(&tail, total)?;
    let cd_end = cd_offset
        .checked_add(cd_size)
        .filter(|end| *end <= total)
        .ok_or(ZipError::Malformed("central directory past the end"))?;
    let in_tail = |start: u64, end: u64| {
        (start >= tail_start).then(|| {
            let s = usize::try_from(start - tail_start).unwrap_or(usize::MAX);
            let e = usize::try_from(end - tail_start).unwrap_or(usize::MAX);
            tail.get(s..e).map(<[u8]>::to_vec)
        })?
    };
    let directory = match in_tail(cd_offset, cd_end) {
        Some(d) => d,
        None => source.range(cd_offset, cd_end).map_err(MemberError::Read)?,
    };
    let members = central_directory(&directory)?;
    let member = wanted
        .choose(&members)
        .ok_or(ZipError::NoMember(wanted.label()))?;
    if member.compressed > MAX_MEMBER || member.uncompressed > MAX_MEMBER {
        return Err(ZipError::TooLarge(member.name.clone()).into());
    }
    // The member ends where the next one (or the directory) starts.
    let end = members
        .iter()
        .map(|m| m.offset)
        .filter(|o| *o > member.offset)
        .min()
        .unwrap_or(cd_offset)
        .min(cd_offset);
    if end <= member.offset || end - member.offset > MAX_MEMBER + (1 << 17) {
        return Err(ZipError::Malformed("member offsets out of order").into());
    }
    let local = match in_tail(member.offset, end) {
        Some(l) => l,
        None => source
            .range(member.offset, end)
            .map_err(MemberError::Read)?,
    };
    Ok(inflate(&local, member)?)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The central directory's offset and size, from the last bytes `tail` of a file of `total`
/// bytes.
fn find_directory(tail: &[u8], total: u64) -> Result<(u64, u64), ZipError> {
    let tail_start = total.saturating_sub(tail.len() as u64);
    // The record is 22 bytes plus a comment: search backwards for its signature.
    let eocd = (0..=tail.len().saturating_sub(22))
        .rev()
        .find(|&i| u32_at(tail, i) == Some(EOCD_SIG))
        .ok_or(ZipError::Malformed("no end of central directory record"))?;
    let short = ZipError::Malformed("end of central directory record cut short");
    let entries = u16_at(tail, eocd + 10).ok_or(short.clone())?;
    let size = u32_at(tail, eocd + 12).ok_or(short.clone())?;
    let offset = u32_at(tail, eocd + 16).ok_or(short)?;
    if entries != u16::MAX && size != u32::MAX && offset != u32::MAX {
        return Ok((u64::from(offset), u64::from(size)));
    }
    // zip64: a 20-byte locator just before the record points at the zip64 record.
    let locator = eocd
        .checked_sub(20)
        .filter(|&l| u32_at(tail, l) == Some(ZIP64_LOCATOR_SIG))
        .ok_or(ZipError::Malformed("zip64 locator missing"))?;
    let record = u64_at(tail, locator + 8).ok_or(ZipError::Malformed("zip64 locator cut short"))?;
    let at = record
        .checked_sub(tail_start)
        .and_then(|r| usize::try_from(r).ok())
        .filter(|&r| u32_at(tail, r) == Some(ZIP64_EOCD_SIG))
        .ok_or(ZipError::Malformed(
            "zip64 end of central directory record not found",
        ))?;
    let size = u64_at(tail, at + 40).ok_or(ZipError::Malformed("zip64 record cut short"))?;
    let offset = u64_at(tail, at + 48).ok_or(ZipError::Malformed("zip64 record cut short"))?;
    Ok((offset, size))
}

/// Every entry of a central directory.
fn central_directory(cd: &[u8]) -> Result<Vec<Member>, ZipError> {
    if cd.len() as u64 > MAX_DIRECTORY {
        return Err(ZipError::Malformed("central directory too large"));
    }
    let short = ZipError::Malformed("central directory entry cut short");
    let mut members = Vec::new();
    let mut i = 0;
    while i < cd.len() {
        if u32_at(cd, i) != Some(CENTRAL_SIG) {
            return Err(ZipError::Malformed("bad central directory entry signature"));
        }
        let field16 = |at| u16_at(cd, i + at).ok_or(short.clone());
        let field32 = |at| u32_at(cd, i + at).ok_or(short.clone());
        let method = field16(10)?;
        let crc32 = field32(16)?;
        let mut compressed = u64::from(field32(20)?);
        let mut uncompressed = u64::from(field32(24)?);
        let name_len = usize::from(field16(28)?);
        let extra_len = usize::from(field16(30)?);
        let comment_len = usize::from(field16(32)?);
        let mut offset = u64::from(field32(42)?);
        let name_at = i + 46;
        let name = cd.get(name_at..name_at + name_len).ok_or(short.clone())?;
        let extra = cd
            .get(name_at + name_len..name_at + name_len + extra_len)
            .ok_or(short.clone())?;
        // zip64 extra field: the 64-bit values of exactly the fields saturated above, in order.
        let mut e = 0;
        while let (Some(id), Some(len)) = (u16_at(extra, e), u16_at(extra, e + 2)) {
            let data = extra
                .get(e + 4..e + 4 + usize::from(len))
                .unwrap_or_default();
            if id == 1 {
                let mut values = (0..data.len() / 8).filter_map(|k| u64_at(data, k * 8));
                for field in [&mut uncompressed, &mut compressed, &mut offset] {
                    if *field == u64::from(u32::MAX) {
                        *field = values
                            .next()
                            .ok_or(ZipError::Malformed("zip64 field missing"))?;
                    }
                }
            }
            e += 4 + usize::from(len);
        }
        members.push(Member {
            name: String::from_utf8_lossy(name).into_owned(),
            method,
            crc32,
            compressed,
            uncompressed,
            offset,
        });
        i = name_at + name_len + extra_len + comment_len;
    }
    Ok(members)
}

/// The member's contents, from bytes that start at its local header.
fn inflate(local: &[u8], member: &Member) -> Result<Vec<u8>, ZipError> {
    let short = || ZipError::Malformed("local header cut short");
    if u32_at(local, 0) != Some(LOCAL_SIG) {
        return Err(ZipError::Malformed("bad local header signature"));
    }
    let name_len = usize::from(u16_at(local, 26).ok_or_else(short)?);
    let extra_len = usize::from(u16_at(local, 28).ok_or_else(short)?);
    let start = 30 + name_len + extra_len;
    let compressed = usize::try_from(member.compressed).map_err(|_| short())?;
    let end = start.checked_add(compressed).ok_or_else(short)?;
    let data = local.get(start..end).ok_or_else(short)?;
    let mut out = Vec::new();
    match member.method {
        0 => out.extend_from_slice(data),
        8 => {
            flate2::read::DeflateDecoder::new(data)
                .take(MAX_MEMBER + 1)
                .read_to_end(&mut out)
                .map_err(|_| ZipError::Corrupt(member.name.clone()))?;
        }
        method => {
            return Err(ZipError::Method {
                name: member.name.clone(),
                method,
            });
        }
    }
    let mut crc = flate2::Crc::new();
    crc.update(&out);
    if out.len() as u64 != member.uncompressed || crc.sum() != member.crc32 {
        return Err(ZipError::Corrupt(member.name.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use proptest::prelude::*;

    use super::*;

    /// A zip of `(name, contents, deflated)` members, with `comment` after the EOCD record.
    fn zip(members: &[(&str, &[u8], bool)], comment: &str, zip64: bool) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data, deflate) in members {
            let method = if *deflate {
                zip::CompressionMethod::Deflated
            } else {
                zip::CompressionMethod::Stored
            };
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(method)
                .large_file(zip64);
            w.start_file(*name, options).unwrap();
            w.write_all(data).unwrap();
        }
        w.set_comment(comment).unwrap();
        w.finish().unwrap().into_inner()
    }

    /// Counts what is read, to check that a big archive costs its tail and one member.
    struct Counting<'a> {
        bytes: &'a [u8],
        read: u64,
        calls: usize,
    }

    impl ReadAt for Counting<'_> {
        type Error = std::convert::Infallible;
        fn tail(&mut self, n: u64) -> Result<(Vec<u8>, u64), Self::Error> {
            let r = self.bytes.tail(n)?;
            self.read += r.0.len() as u64;
            self.calls += 1;
            Ok(r)
        }
        fn range(&mut self, start: u64, end: u64) -> Result<Vec<u8>, Self::Error> {
            let r = self.bytes.range(start, end)?;
            self.read += r.len() as u64;
            self.calls += 1;
            Ok(r)
        }
    }

    const META: Wanted<'static> = Wanted::WheelMetadata {
        name: "foo",
        version: "1.0",
    };

    fn read(bytes: &[u8], wanted: Wanted<'_>) -> Result<Vec<u8>, ZipError> {
        read_member(&mut { bytes }, wanted).map_err(|e| match e {
            MemberError::Zip(z) => z,
            MemberError::Read(never) => match never {},
        })
    }

    #[test]
    fn reads_stored_and_deflated_members() {
        let text = b"Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n".repeat(50);
        for deflate in [false, true] {
            for zip64 in [false, true] {
                let z = zip(
                    &[
                        ("foo/__init__.py", b"x = 1\n", true),
                        ("foo-1.0.dist-info/METADATA", &text, deflate),
                        ("foo-1.0.dist-info/RECORD", b"", false),
                    ],
                    "a comment",
                    zip64,
                );
                assert_eq!(read(&z, META).unwrap(), text, "{deflate} {zip64}");
            }
        }
    }

    #[test]
    fn a_big_archive_costs_its_tail_the_directory_and_the_member() {
        // 2 MiB of incompressible data first, then a directory larger than the tail.
        let noise = crate::testing::noise(2 << 20, 7);
        let names: Vec<String> = (0..1500)
            .map(|i| format!("foo/a_rather_long_module_name_{i:05}.py"))
            .collect();
        let mut members: Vec<(&str, &[u8], bool)> = vec![("foo/blob.bin", &noise, false)];
        members.extend(names.iter().map(|n| (n.as_str(), &b""[..], false)));
        members.push(("foo-1.0.dist-info/METADATA", b"Name: foo\n", true));
        let z = zip(&members, "", false);
        let mut source = Counting {
            bytes: &z,
            read: 0,
            calls: 0,
        };
        let got = read_member(&mut source, META).unwrap();
        assert_eq!(got, b"Name: foo\n");
        assert_eq!(source.calls, 3, "the tail, the directory, the member");
        assert!(source.read < 300 << 10, "{} bytes read", source.read);
    }

    /// A one-member stored archive written by hand, its end records in zip64 form: the EOCD's
    /// fields saturated, the real ones in the zip64 record that the locator points at, and the
    /// member's offset in a zip64 extra field of its directory entry.
    fn zip64_by_hand(name: &str, data: &[u8]) -> Vec<u8> {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let len = u32::try_from(data.len()).unwrap();
        let name_len = u16::try_from(name.len()).unwrap();
        let mut z = Vec::new();
        // Local header: signature, version, flags, method 0, time, date, crc, sizes, name and
        // extra lengths, then the name and the data.
        z.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        z.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        z.extend_from_slice(&crc.sum().to_le_bytes());
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&name_len.to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
        z.extend_from_slice(name.as_bytes());
        z.extend_from_slice(data);
        let cd_offset = z.len() as u64;
        // Central directory entry: the offset saturated, the real one in extra field 0x0001.
        z.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
        z.extend_from_slice(&[45, 3, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        z.extend_from_slice(&crc.sum().to_le_bytes());
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&name_len.to_le_bytes());
        z.extend_from_slice(&12u16.to_le_bytes()); // extra length
        z.extend_from_slice(&[0; 8]); // comment length, disk, internal and external attributes
        z.extend_from_slice(&[0; 4][..2]);
        z.extend_from_slice(&u32::MAX.to_le_bytes()); // local header offset: see zip64 extra
        z.extend_from_slice(name.as_bytes());
        z.extend_from_slice(&1u16.to_le_bytes()); // zip64 extra field id
        z.extend_from_slice(&8u16.to_le_bytes()); // its length
        z.extend_from_slice(&0u64.to_le_bytes()); // the offset
        let cd_size = z.len() as u64 - cd_offset;
        let record = z.len() as u64;
        // zip64 end of central directory record (56 bytes).
        z.extend_from_slice(&ZIP64_EOCD_SIG.to_le_bytes());
        z.extend_from_slice(&44u64.to_le_bytes()); // size of the rest
        z.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // versions, disks
        z.extend_from_slice(&1u64.to_le_bytes()); // entries on this disk
        z.extend_from_slice(&1u64.to_le_bytes()); // entries
        z.extend_from_slice(&cd_size.to_le_bytes());
        z.extend_from_slice(&cd_offset.to_le_bytes());
        // zip64 locator: disk, record offset, disks.
        z.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
        z.extend_from_slice(&0u32.to_le_bytes());
        z.extend_from_slice(&record.to_le_bytes());
        z.extend_from_slice(&1u32.to_le_bytes());
        // EOCD with every field saturated.
        z.extend_from_slice(&EOCD_SIG.to_le_bytes());
        z.extend_from_slice(&[0xff; 16]);
        z.extend_from_slice(&0u16.to_le_bytes()); // comment length
        z
    }

    #[test]
    fn reads_zip64_end_records_and_extra_fields() {
        let z = zip64_by_hand("foo-1.0.dist-info/METADATA", b"Name: foo\n");
        assert_eq!(read(&z, META).unwrap(), b"Name: foo\n");
        // The locator pointing elsewhere is an error, not a panic.
        let mut bad = z.clone();
        let at = bad.len() - 22 - 20 + 8;
        bad[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            read(&bad, META).unwrap_err(),
            ZipError::Malformed("zip64 end of central directory record not found")
        );
    }

    #[test]
    fn chooses_the_wheels_own_dist_info() {
        let z = zip(
            &[
                ("vendored-2.0.dist-info/METADATA", b"other", false),
                ("Foo-1.0.dist-info/METADATA", b"mine", false),
                ("foo/x.dist-info/METADATA", b"nested", false),
            ],
            "",
            false,
        );
        assert_eq!(read(&z, META).unwrap(), b"mine");
        let z = zip(
            &[
                ("a/b/PKG-INFO", b"deep", false),
                ("a/PKG-INFO", b"top", false),
            ],
            "",
            false,
        );
        assert_eq!(read(&z, Wanted::PkgInfo).unwrap(), b"top");
    }

    #[test]
    fn rejections() {
        assert_eq!(
            read(b"", META).unwrap_err(),
            ZipError::Malformed("no end of central directory record")
        );
        let z = zip(&[("foo/x.py", b"", false)], "", false);
        assert_eq!(
            read(&z, META).unwrap_err(),
            ZipError::NoMember("*.dist-info/METADATA")
        );
        // A flipped byte in the member's data: caught by the CRC.
        let text = b"Name: foo\nVersion: 1.0\n";
        let mut z = zip(&[("foo-1.0.dist-info/METADATA", text, false)], "", false);
        let at = z.windows(text.len()).position(|w| w == text).unwrap();
        z[at] ^= 1;
        assert_eq!(
            read(&z, META).unwrap_err(),
            ZipError::Corrupt("foo-1.0.dist-info/METADATA".into())
        );
    }

    proptest! {
        /// Whatever the bytes, reading ends in a member or an error, never a panic; and a
        /// real archive (plain or zip64) cut short or with any byte changed is never read as
        /// something else.
        #[test]
        fn never_panics(
            bytes in prop::collection::vec(any::<u8>(), 0..400),
            cut in 0usize..400,
            at in 0usize..400,
            value in any::<u8>(),
        ) {
            let _ = read(&bytes, META);
            let want = b"Name: foo\n".to_vec();
            let plain = zip(&[("foo-1.0.dist-info/METADATA", &want, true)], "", false);
            let zip64 = zip64_by_hand("foo-1.0.dist-info/METADATA", &want);
            for z in [plain, zip64] {
                let cut = cut.min(z.len());
                if let Ok(got) = read(&z[cut..], META) {
                    prop_assert_eq!(&got, &want);
                }
                let mut damaged = z.clone();
                if let Some(b) = damaged.get_mut(at) {
                    *b = value;
                }
                if let Ok(got) = read(&damaged, META) {
                    prop_assert_eq!(&got, &want);
                }
            }
        }
    }
}

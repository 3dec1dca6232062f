// SPDX-License-Identifier: GPL-2.0

//! A member device: a block device or an image file, read and written in whole blocks.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use bkcore::format::BLOCK_SIZE;

/// Alignment of O_DIRECT buffers, offsets and lengths.
pub(crate) const ALIGN: usize = 4096;

/// A buffer whose bytes start on an [`ALIGN`] boundary, for O_DIRECT.
pub(crate) struct Aligned {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    /// `len` zero bytes.
    pub(crate) fn new(len: usize) -> Aligned {
        let buf = vec![0u8; len.saturating_add(ALIGN)];
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        Aligned { buf, start, len }
    }

    /// The bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf
            .get(self.start..self.start + self.len)
            .unwrap_or(&[])
    }

    /// The bytes, to fill.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        let (s, l) = (self.start, self.len);
        self.buf.get_mut(s..s + l).unwrap_or(&mut [])
    }
}

/// An open member device.
pub struct Device {
    /// The path given on the command line.
    pub path: PathBuf,
    file: File,
    /// Bytes available.
    pub size: u64,
    /// Whether it is a block device (else an image file).
    pub is_block: bool,
    /// Opened with O_DIRECT: reads go through an aligned buffer.
    direct: bool,
}

fn err(path: &Path, what: &str, e: std::io::Error) -> String {
    format!("{}: {what}: {e}", path.display())
}

/// An open for writing, exclusive on a block device (`O_EXCL`): it fails with `EBUSY`
/// while the device is mounted or held, e.g. by a registered bkalloc volume.
fn open_for_write(path: &Path, is_block: bool) -> crate::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(!is_block).truncate(false);
    if is_block {
        o.custom_flags(libc::O_EXCL);
    }
    o.open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::EBUSY) {
            format!(
                "{}: in use (mounted, or a member of a registered volume): {e}",
                path.display()
            )
        } else {
            err(path, "cannot open", e)
        }
    })
}

impl Device {
    /// Opens an existing device or image.
    /// For writing, a block device is opened exclusively.
    pub fn open(path: &Path, write: bool) -> crate::Result<Device> {
        let file = if write {
            let is_block = std::fs::metadata(path)
                .map_err(|e| err(path, "cannot open", e))?
                .file_type()
                .is_block_device();
            open_for_write(path, is_block)?
        } else {
            OpenOptions::new()
                .read(true)
                .open(path)
                .map_err(|e| err(path, "cannot open", e))?
        };
        Self::from_file(path, file)
    }

    /// Opens an existing device or image to read with O_DIRECT, past the page cache:
    /// a registered volume's module writes with bios, so cached pages of an earlier
    /// read would be stale. Where O_DIRECT is refused (an image on tmpfs, which is its
    /// own page cache), a plain open.
    pub fn open_direct(path: &Path) -> crate::Result<Device> {
        let open = |flags: i32| OpenOptions::new().read(true).custom_flags(flags).open(path);
        let (file, direct) = match open(libc::O_DIRECT) {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                (open(0).map_err(|e| err(path, "cannot open", e))?, false)
            }
            Err(e) => return Err(err(path, "cannot open", e)),
        };
        let mut d = Self::from_file(path, file)?;
        d.direct = direct;
        Ok(d)
    }

    /// A device for `file`, already opened from `path` (with flags of the caller's).
    pub(crate) fn from_file(path: &Path, mut file: File) -> crate::Result<Device> {
        let meta = file.metadata().map_err(|e| err(path, "stat", e))?;
        let is_block = meta.file_type().is_block_device();
        if !is_block && !meta.is_file() {
            return Err(format!(
                "{}: not a block device or a regular file",
                path.display()
            ));
        }
        let size = if is_block {
            file.seek(SeekFrom::End(0))
                .map_err(|e| err(path, "size", e))?
        } else {
            meta.len()
        };
        Ok(Device {
            path: path.to_path_buf(),
            file,
            size,
            is_block,
            direct: false,
        })
    }

    /// Opens for writing, creating or growing an image file (sparsely) to at least
    /// `min_size` bytes. A block device must already be that large, and is opened
    /// exclusively.
    pub fn open_sized(path: &Path, min_size: u64) -> crate::Result<Device> {
        let is_block = std::fs::metadata(path)
            .map(|m| m.file_type().is_block_device())
            .unwrap_or(false);
        let file = open_for_write(path, is_block)?;
        let mut d = Self::from_file(path, file)?;
        if d.size < min_size {
            if d.is_block {
                return Err(format!(
                    "{}: block device has {} bytes, {min_size} needed",
                    path.display(),
                    d.size
                ));
            }
            d.file
                .set_len(min_size)
                .map_err(|e| err(path, "cannot extend", e))?;
            d.size = min_size;
        }
        Ok(d)
    }

    /// The open file (for positioned I/O a caller aligns itself, e.g. O_DIRECT).
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Reads `buf.len()` bytes (whole blocks) at `off`.
    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> crate::Result<()> {
        debug_assert!(
            off.is_multiple_of(BLOCK_SIZE as u64) && buf.len().is_multiple_of(BLOCK_SIZE)
        );
        let what = || format!("read at {off}");
        if !self.direct || (buf.as_ptr() as usize).is_multiple_of(ALIGN) {
            return self
                .file
                .read_exact_at(buf, off)
                .map_err(|e| err(&self.path, &what(), e));
        }
        let mut a = Aligned::new(buf.len());
        self.file
            .read_exact_at(a.bytes_mut(), off)
            .map_err(|e| err(&self.path, &what(), e))?;
        buf.copy_from_slice(a.bytes());
        Ok(())
    }

    /// Reads `n` bytes at `off` into a new buffer.
    pub fn read_vec(&self, off: u64, n: usize) -> crate::Result<Vec<u8>> {
        let mut v = vec![0u8; n];
        self.read_at(off, &mut v)?;
        Ok(v)
    }

    /// Writes `buf` (whole blocks) at `off`.
    pub fn write_at(&self, off: u64, buf: &[u8]) -> crate::Result<()> {
        debug_assert!(
            off.is_multiple_of(BLOCK_SIZE as u64) && buf.len().is_multiple_of(BLOCK_SIZE)
        );
        self.file
            .write_all_at(buf, off)
            .map_err(|e| err(&self.path, &format!("write at {off}"), e))
    }

    /// Flushes everything written to stable storage.
    pub fn sync(&self) -> crate::Result<()> {
        self.file.sync_all().map_err(|e| err(&self.path, "sync", e))
    }
}

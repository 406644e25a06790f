//! The `dokan::FileSystemHandler` over a [`TreeView`], and [`mount`]/[`unmount`].
//!
//! Every open is decided by [`policy::decide_open`]; every callback that would change the volume
//! answers `STATUS_MEDIA_WRITE_PROTECTED`, and the volume is mounted with Dokan's write-protect
//! flag as well, so the driver refuses writes before they reach this code.
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dokan::{
    CreateFileInfo, DiskSpaceInfo, FileInfo, FileSystemHandler, FileSystemMountError,
    FileSystemMounter, FileTimeOperation, FillDataError, FillDataResult, FindData,
    IO_SECURITY_CONTEXT, MountFlags, MountOptions, OperationInfo, OperationResult, VolumeInfo,
};
use dx_py_core::store::PackageStore;
use dx_py_core::tree::{Node, NodeKind, OpenTreeError, open_tree};
use widestring::{U16CStr, U16CString};
use winapi::shared::ntdef::NTSTATUS;
use winapi::shared::ntstatus::{
    STATUS_BUFFER_OVERFLOW, STATUS_FILE_CORRUPT_ERROR, STATUS_FILE_IS_A_DIRECTORY,
    STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER, STATUS_IO_DEVICE_ERROR,
    STATUS_MEDIA_WRITE_PROTECTED, STATUS_NOT_A_DIRECTORY, STATUS_OBJECT_NAME_COLLISION,
    STATUS_OBJECT_NAME_INVALID, STATUS_OBJECT_NAME_NOT_FOUND, STATUS_OBJECT_PATH_NOT_FOUND,
};
use winapi::um::winnt::{
    ACCESS_MASK, FILE_CASE_PRESERVED_NAMES, FILE_READ_ONLY_VOLUME, FILE_UNICODE_ON_DISK,
    PSECURITY_DESCRIPTOR,
};

use crate::policy::{self, CreateRequest, Refusal};
use crate::view::{TreeView, ViewError};

/// What an open handle refers to: the inode it resolved to (links already followed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFile {
    ino: u64,
}

/// Serves one tree read-only through Dokan.
#[derive(Debug)]
pub struct TreeHandler<B> {
    view: TreeView<B>,
    serial: u32,
}

impl<B: AsRef<[u8]>> TreeHandler<B> {
    /// Wraps `view`. The volume serial number is taken from the tree's header, so two mounts
    /// of different package sets never look like the same volume to `os.path.samefile`.
    pub fn new(view: TreeView<B>) -> Self {
        let head = view.tree().bytes().get(..128).unwrap_or_default();
        let hash = blake3::hash(head);
        let serial = u32::from_le_bytes([
            hash.as_bytes()[0],
            hash.as_bytes()[1],
            hash.as_bytes()[2],
            hash.as_bytes()[3],
        ]);
        Self { view, serial }
    }

    /// The view being served.
    pub fn view(&self) -> &TreeView<B> {
        &self.view
    }

    fn time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.view.tree().mtime().max(0) as u64)
    }

    fn node(&self, open: &OpenFile) -> OperationResult<Node<'_>> {
        self.view
            .tree()
            .node(open.ino)
            .map_err(|e| status(&ViewError::Tree(e)))
    }
}

/// The `NTSTATUS` for a failed lookup or read; the unexpected ones are logged.
fn status(e: &ViewError) -> NTSTATUS {
    match e {
        ViewError::NotFound => STATUS_OBJECT_NAME_NOT_FOUND,
        ViewError::PathNotFound => STATUS_OBJECT_PATH_NOT_FOUND,
        ViewError::InvalidName => STATUS_OBJECT_NAME_INVALID,
        ViewError::Tree(_) => {
            tracing::error!("{e}");
            STATUS_FILE_CORRUPT_ERROR
        }
        ViewError::Data(d) if d.is_corrupt_tree() => {
            tracing::error!("{e}");
            STATUS_FILE_CORRUPT_ERROR
        }
        ViewError::Data(_) => {
            tracing::error!("{e}");
            STATUS_IO_DEVICE_ERROR
        }
    }
}

fn refusal_status(r: Refusal) -> NTSTATUS {
    match r {
        Refusal::WriteProtected => STATUS_MEDIA_WRITE_PROTECTED,
        Refusal::NameCollision => STATUS_OBJECT_NAME_COLLISION,
        Refusal::NotFound => STATUS_OBJECT_NAME_NOT_FOUND,
        Refusal::NotADirectory => STATUS_NOT_A_DIRECTORY,
        Refusal::IsADirectory => STATUS_FILE_IS_A_DIRECTORY,
        Refusal::InvalidParameter => STATUS_INVALID_PARAMETER,
    }
}

// The hand-written constants of `policy` must be the ones Windows uses.
const _: () = {
    use dokan_sys::win32 as w;
    use winapi::um::winnt as nt;
    assert!(policy::FILE_READ_DATA == nt::FILE_READ_DATA);
    assert!(policy::FILE_WRITE_DATA == nt::FILE_WRITE_DATA);
    assert!(policy::FILE_APPEND_DATA == nt::FILE_APPEND_DATA);
    assert!(policy::FILE_WRITE_EA == nt::FILE_WRITE_EA);
    assert!(policy::FILE_DELETE_CHILD == nt::FILE_DELETE_CHILD);
    assert!(policy::FILE_READ_ATTRIBUTES == nt::FILE_READ_ATTRIBUTES);
    assert!(policy::FILE_WRITE_ATTRIBUTES == nt::FILE_WRITE_ATTRIBUTES);
    assert!(policy::DELETE == nt::DELETE);
    assert!(policy::SYNCHRONIZE == nt::SYNCHRONIZE);
    assert!(policy::WRITE_DAC == nt::WRITE_DAC);
    assert!(policy::WRITE_OWNER == nt::WRITE_OWNER);
    assert!(policy::GENERIC_ALL == nt::GENERIC_ALL);
    assert!(policy::GENERIC_WRITE == nt::GENERIC_WRITE);
    assert!(policy::FILE_SUPERSEDE == w::FILE_SUPERSEDE);
    assert!(policy::FILE_OPEN == w::FILE_OPEN);
    assert!(policy::FILE_CREATE == w::FILE_CREATE);
    assert!(policy::FILE_OPEN_IF == w::FILE_OPEN_IF);
    assert!(policy::FILE_OVERWRITE == w::FILE_OVERWRITE);
    assert!(policy::FILE_OVERWRITE_IF == w::FILE_OVERWRITE_IF);
    assert!(policy::FILE_DIRECTORY_FILE == w::FILE_DIRECTORY_FILE);
    assert!(policy::FILE_NON_DIRECTORY_FILE == w::FILE_NON_DIRECTORY_FILE);
    assert!(policy::FILE_DELETE_ON_CLOSE == w::FILE_DELETE_ON_CLOSE);
    assert!(policy::FILE_ATTRIBUTE_READONLY == nt::FILE_ATTRIBUTE_READONLY);
    assert!(policy::FILE_ATTRIBUTE_DIRECTORY == nt::FILE_ATTRIBUTE_DIRECTORY);
};

impl<'c, 'h: 'c, B: AsRef<[u8]> + Sync + 'h> FileSystemHandler<'c, 'h> for TreeHandler<B> {
    type Context = OpenFile;

    fn create_file(
        &'h self,
        file_name: &U16CStr,
        _security_context: &IO_SECURITY_CONTEXT,
        desired_access: ACCESS_MASK,
        _file_attributes: u32,
        _share_access: u32,
        create_disposition: u32,
        create_options: u32,
        _info: &mut OperationInfo<'c, 'h, Self>,
    ) -> OperationResult<CreateFileInfo<Self::Context>> {
        let path = file_name
            .to_string()
            .map_err(|_| STATUS_OBJECT_NAME_INVALID)?;
        let found = match self.view.resolve(&path) {
            Ok(node) => Some(node),
            Err(ViewError::NotFound) => None,
            Err(e) => return Err(status(&e)),
        };
        let req = CreateRequest {
            desired_access,
            disposition: create_disposition,
            options: create_options,
        };
        policy::decide_open(req, found.map(|n| n.kind == NodeKind::Dir)).map_err(refusal_status)?;
        let node = found.ok_or(STATUS_OBJECT_NAME_NOT_FOUND)?;
        // For FILE_OPEN_IF, "not created" makes the wrapper report the name as existing,
        // which Dokan turns into a successful open of an existing file.
        Ok(CreateFileInfo {
            context: OpenFile { ino: node.ino },
            is_dir: node.kind == NodeKind::Dir,
            new_file_created: false,
        })
    }

    fn read_file(
        &'h self,
        _file_name: &U16CStr,
        offset: i64,
        buffer: &mut [u8],
        _info: &OperationInfo<'c, 'h, Self>,
        context: &'c Self::Context,
    ) -> OperationResult<u32> {
        let node = self.node(context)?;
        if node.kind == NodeKind::Dir {
            return Err(STATUS_INVALID_DEVICE_REQUEST);
        }
        let offset = u64::try_from(offset).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let n = self
            .view
            .read(&node, offset, buffer)
            .map_err(|e| status(&e))?;
        // `buffer` came from a u32 length, so `n` fits.
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn flush_file_buffers(
        &'h self,
        _file_name: &U16CStr,
        _info: &OperationInfo<'c, 'h, Self>,
        _context: &'c Self::Context,
    ) -> OperationResult<()> {
        // Nothing is ever dirty.
        Ok(())
    }

    fn get_file_information(
        &'h self,
        _file_name: &U16CStr,
        _info: &OperationInfo<'c, 'h, Self>,
        context: &'c Self::Context,
    ) -> OperationResult<FileInfo> {
        let node = self.node(context)?;
        let is_dir = node.kind == NodeKind::Dir;
        let time = self.time();
        Ok(FileInfo {
            attributes: policy::attributes(is_dir),
            creation_time: time,
            last_access_time: time,
            last_write_time: time,
            file_size: if is_dir { 0 } else { node.size },
            // NTFS reports one link for a directory; files have exactly one in a tree.
            number_of_links: if is_dir { 1 } else { node.nlink },
            file_index: node.ino,
        })
    }

    fn find_files(
        &'h self,
        _file_name: &U16CStr,
        mut fill_find_data: impl FnMut(&FindData) -> FillDataResult,
        _info: &OperationInfo<'c, 'h, Self>,
        context: &'c Self::Context,
    ) -> OperationResult<()> {
        let dir = self.node(context)?;
        if dir.kind != NodeKind::Dir {
            return Err(STATUS_NOT_A_DIRECTORY);
        }
        let time = self.time();
        // Dokan adds `.` and `..` itself and filters by the search pattern.
        for entry in self.view.entries(&dir) {
            let entry = entry.map_err(|e| status(&e))?;
            let is_dir = entry.node.kind == NodeKind::Dir;
            let data = FindData {
                attributes: policy::attributes(is_dir),
                creation_time: time,
                last_access_time: time,
                last_write_time: time,
                file_size: if is_dir { 0 } else { entry.node.size },
                file_name: U16CString::from_str(entry.name)
                    .map_err(|_| STATUS_OBJECT_NAME_INVALID)?,
            };
            match fill_find_data(&data) {
                Ok(()) => {}
                // Cannot happen: names are at most 255 UTF-16 units (`policy::windows_name_ok`).
                Err(FillDataError::NameTooLong) => {}
                Err(FillDataError::BufferFull) => return Err(STATUS_BUFFER_OVERFLOW),
            }
        }
        Ok(())
    }

    fn get_disk_free_space(
        &'h self,
        _info: &OperationInfo<'c, 'h, Self>,
    ) -> OperationResult<DiskSpaceInfo> {
        Ok(DiskSpaceInfo {
            byte_count: self.view.total_bytes(),
            free_byte_count: 0,
            available_byte_count: 0,
        })
    }

    fn get_volume_information(
        &'h self,
        _info: &OperationInfo<'c, 'h, Self>,
    ) -> OperationResult<VolumeInfo> {
        Ok(VolumeInfo {
            name: U16CString::from_str("dx-py").map_err(|_| STATUS_INVALID_PARAMETER)?,
            serial_number: self.serial,
            max_component_length: 255,
            // Names compare without case (see `TreeView::lookup`) but keep theirs.
            fs_flags: FILE_CASE_PRESERVED_NAMES | FILE_UNICODE_ON_DISK | FILE_READ_ONLY_VOLUME,
            // Windows enables features by file system name; Dokan advises a well-known one.
            fs_name: U16CString::from_str("NTFS").map_err(|_| STATUS_INVALID_PARAMETER)?,
        })
    }

    fn mounted(
        &'h self,
        mount_point: &U16CStr,
        _info: &OperationInfo<'c, 'h, Self>,
    ) -> OperationResult<()> {
        tracing::info!("mounted read-only at {}", mount_point.to_string_lossy());
        Ok(())
    }

    fn unmounted(&'h self, _info: &OperationInfo<'c, 'h, Self>) -> OperationResult<()> {
        tracing::info!("unmounted");
        Ok(())
    }

    // Everything below would change the volume.

    fn write_file(
        &'h self,
        _file_name: &U16CStr,
        _offset: i64,
        _buffer: &[u8],
        _info: &OperationInfo<'c, 'h, Self>,
        _context: &'c Self::Context,
    ) -> OperationResult<u32> {
        Err(STATUS_MEDIA_WRITE_PROTECTED)
    }

    fn set_file_attributes(
        &'h self,
        _file_name: &U16CStr,
        _file_attributes: u32,
        _info: &OperationInfo<'c, 'h, Self>,
        _context: &'c Self::Context,
    ) -> OperationResult<()> {
        Err(STATUS_MEDIA_WRITE_PROTECTED)
    }

    fn set_file_time(
        &'h self,
        _file_name: &U16CStr,
        _creation_time: FileTimeOperation,
        _last_access_time: FileTimeOperation,
        _last_write_time: FileTimeOperation,
        _info: &OperationInfo<'c, 'h, Self>,
        _context: &'c Self::Context,
    ) -> OperationResult<()> {
        Err(STATUS_MEDIA_WRITE_PROTECTED)
    }

    fn delete_file(
        &'h self,
        _file_name: &U16CStr,
        _info: &OperationInfo<'c, 'h, Self>,
        _context: &'c Self::Context,
    ) -> OperationResult<()> {
        Err(STATUS_MEDIA_WRITE_PROTECTED)
    }

    fn delete_directory(
        &'h self,
        _file_name: &U16CStr,
        _info: &OperationInfo<'c, 'h, Self>,
        _context: &'c Self::Context,
    ) -> OperationResult<()> {
        Err(STATUS_MEDIA_WRITE_PROTECTED)
    }

    fn move_file(
        &'h self,
        _file_name: &U16CStr,
        _new_file_name: &U16CStr,
        _replace_if_existing: bool,
        _info: &OperationInfo<'c, 'h, Self>,
        _context: &'c Self::Context,
    ) -> OperationResult<()> {
        Err(STATUS_MEDIA_WRITE_PROTECTED)
    }

    fn set_end_of_file(
        &'h self,
        _file_name: &U16CStr,
        _offset: i64,
        _info: &OperationInfo<'c, 'h, Self>,
        _context: &'c Self::Context,
    ) -> OperationResult<()> {
        Err(STATUS_MEDIA_WRITE_PROTECTED)
    }

    fn set_allocation_size(
        &'h self,
        _file_name: &U16CStr,
        _alloc_size: i64,
        _info: &OperationInfo<'c, 'h, Self>,
        _context: &'c Self::Context,
    ) -> OperationResult<()> {
        Err(STATUS_MEDIA_WRITE_PROTECTED)
    }

    fn set_file_security(
        &'h self,
        _file_name: &U16CStr,
        _security_information: u32,
        _security_descriptor: PSECURITY_DESCRIPTOR,
        _buffer_length: u32,
        _info: &OperationInfo<'c, 'h, Self>,
        _context: &'c Self::Context,
    ) -> OperationResult<()> {
        Err(STATUS_MEDIA_WRITE_PROTECTED)
    }
}

/// A venv that cannot be mounted or unmounted.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The tree file cannot be opened.
    #[error(transparent)]
    Tree(#[from] OpenTreeError),
    /// The mount point cannot be passed to Dokan (it contains a NUL).
    #[error("Invalid mount point `{0}`")]
    MountPoint(PathBuf),
    /// Dokan refused the mount (driver missing, mount point in use or not an empty directory…).
    #[error("Cannot mount at `{path}` with Dokan: {source}")]
    Dokan {
        /// The mount point.
        path: PathBuf,
        /// Dokan's reason.
        #[source]
        source: FileSystemMountError,
    },
    /// Dokan found no volume to unmount there.
    #[error("No dx-py volume is mounted at `{0}`")]
    NotMounted(PathBuf),
}

/// Mounts held by this process: Dokan is initialised for the first and shut down after the last.
static DOKAN_USERS: Mutex<usize> = Mutex::new(0);

fn dokan_acquire() {
    let mut users = DOKAN_USERS.lock().unwrap_or_else(|e| e.into_inner());
    if *users == 0 {
        dokan::init();
    }
    *users += 1;
}

fn dokan_release() {
    let mut users = DOKAN_USERS.lock().unwrap_or_else(|e| e.into_inner());
    *users = users.saturating_sub(1);
    if *users == 0 {
        dokan::shutdown();
    }
}

fn wide(path: &Path) -> Result<U16CString, MountError> {
    U16CString::from_os_str(path.as_os_str())
        .map_err(|_| MountError::MountPoint(path.to_path_buf()))
}

/// Serves the tree at `tree_path`, with file bytes from the store at `store_dir`, read-only at
/// `mount_point` (an empty directory on NTFS, or a drive letter such as `M:\`). Mapping the
/// tree is O(1); packs are mapped on first read. Blocks until the volume is unmounted
/// ([`unmount`], or Dokan's own tools).
pub fn mount(tree_path: &Path, store_dir: &Path, mount_point: &Path) -> Result<(), MountError> {
    let tree = open_tree(tree_path)?;
    let handler = TreeHandler::new(TreeView::new(tree, PackageStore::open(store_dir)));
    let point = wide(mount_point)?;
    let options = MountOptions {
        flags: MountFlags::WRITE_PROTECT,
        ..MountOptions::default()
    };
    dokan_acquire();
    let result = {
        let mut mounter = FileSystemMounter::new(&handler, &point, &options);
        // Dropping the mounted file system waits until it is unmounted.
        mounter.mount().map(drop)
    };
    dokan_release();
    result.map_err(|source| MountError::Dokan {
        path: mount_point.to_path_buf(),
        source,
    })
}

/// Unmounts the Dokan volume at `mount_point`; the [`mount`] serving it then returns.
pub fn unmount(mount_point: &Path) -> Result<(), MountError> {
    let point = wide(mount_point)?;
    dokan_acquire();
    let done = dokan::unmount(point);
    dokan_release();
    if done {
        Ok(())
    } else {
        Err(MountError::NotMounted(mount_point.to_path_buf()))
    }
}

// Package diskqueue is a sink.Queue kept in a directory, for buffer.dir.
//
// What it promises:
//
//   - A record whose Append returned nil with fsync "always" is delivered at
//     least once, across Close, kill -9 and power loss. With "interval", the
//     records appended in the last interval can be lost to a crash; those that
//     survive are an unbroken prefix of what was appended.
//   - Next hands out only records that are durable, so a crash cannot take
//     back data that InfluxDB already has; with "interval" a record waits up to
//     one interval before it can be sent. It never hands out a record of a
//     group not yet committed, and Stats does not count one.
//   - Records come out in the order they went in, never invented: every record
//     carries a CRC-32C checked when the directory is opened and again when the
//     record is read.
//   - Only two things lose acknowledged data, and both are counted in
//     QueueStats.DroppedLines and logged: the byte cap ("buffer_full": whole
//     segments, oldest first; the segments holding the batch in flight are
//     kept until Commit, so the cap can be exceeded by them meanwhile) and
//     damage on disk ("corrupt"). A record larger than the cap is refused with
//     ErrTooLarge and counted as "buffer_full", as the memory queue does. A
//     group is made room for a record at a time; one that alone exceeds the
//     cap fails with ErrTooLarge, and every line handed to it is counted as
//     "buffer_full". An open group's segment is not dropped either, so while
//     it is open the cap can also be exceeded by the older records there.
//   - Open never refuses to start because of the queue's own files. A torn
//     record at the end of the newest segment (an unclean shutdown) is cut.
//     Damage elsewhere is corruption: the segment is copied aside to
//     NAME.corrupt, each damaged stretch is overwritten with a padding record so
//     every other record keeps its offset, and the lines lost are counted. A
//     corrupt position file means everything on disk is sent again. Open fails
//     only if the directory cannot be created, written or locked.
//   - The collector's state is saved with its data, as one group of
//     checksummed records (split at Options.RecordMaxLines/RecordMaxBytes so
//     batches keep to the sender's limits) whose last record carries the
//     state. AppendWithState writes a whole scrape so, in one write. A group
//     can also be written a record at a time, as the collector converts a
//     page, so that neither holds the scrape whole: BeginGroup, AppendGroup
//     for each record (written straight to the segment), CommitGroup with the
//     state (or CommitGroupFrom, which writes it as it is produced, the last
//     record's header after its payload), which syncs and only then makes
//     the group visible. AbortGroup,
//     Close, a failed write or a group over the cap cut the file back to
//     where the group began. One append or group is written at a time, the
//     others wait (TryBeginGroup does not), so a group's records are
//     contiguous in one segment, which may grow past SegmentSize for it. A
//     group cut short by a crash is dropped whole on open. So after a crash a
//     scrape and its state are both there or both gone: the collector resumes
//     from the state that matches the last data queued, and a counter's
//     increase is neither lost nor counted twice. LoadState returns the newest
//     committed state of a key. Damage keeps to the same rule: an append whose
//     last record is damaged or missing (other than at the end of the newest
//     segment) is dropped whole, and counted; a damaged state-only record can
//     still make the collector fall back to an older state.
//
// On disk: segment files named by the queue offset of their first byte, a
// lock file (flock: one process per directory), a position file with the
// offset up to which everything is committed, and a state file. A record is
// a 32-byte header (kind, data length, line count, key and state lengths,
// append time, checksum) and a payload (data, key, state); see record.go.
// The records of a group share their append time, which is how Open tells
// groups apart. Next joins whole records with one read per segment and never
// looks at lines. Offsets start after the last segment, the position and
// every saved state, so a new record never sorts before anything it must
// follow.
//
// Why the states are safe: a state is first durable inside its record. A
// segment holding states is deleted (consumed or dropped over the cap) only
// after the newest state of every key has been written to the state file
// (temporary file, fsync, rename, fsync of the directory), and only after the
// active segment is synced, so a state never becomes durable before its data.
// On open the state file and the records in the segments are merged, and the
// higher offset wins per key. The queue keeps no copy of a state (a state is
// megabytes for a large page): it reads it back for LoadState and for the
// next state file, from its record while the segment is there, checksum
// checked, and after from the state file, which it holds open and whose
// checksum, over the whole file, it verifies once before the first such read.
//
// The position file is overwritten in place at each Commit, without fsync:
// losing it to a crash sends committed data again, which InfluxDB absorbs,
// since a point with the same series and timestamp overwrites the old one.
// Close replaces it whole and syncs it.
package diskqueue

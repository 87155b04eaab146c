//! Replay's parallel apply: the thread reading the log decodes each SET and
//! allocates its key's block, and applier threads insert them, each owning
//! a fixed subset of the table's shards. A key always lives in one shard, so
//! its records reach one applier, in log order, and the last one wins as in
//! a sequential replay. Any other record (a delete, a batch, a flush) is a
//! barrier: every applier drains its queue before it is applied.
//!
//! Why: inserting into the table (hashing, probing, growing) was most of
//! replay's time, and the reader's own work (read, CRC, decode, allocate)
//! can overlap it on a second core.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

use super::table::{PreparedSet, Table};

/// Sets handed to an applier in one message: large enough that the channel
/// costs nothing per key, small enough to keep both sides busy.
const BATCH: usize = 1024;
/// Batches queued per applier before the reader waits.
const QUEUE: usize = 8;

enum Message {
    Sets(Vec<PreparedSet>),
    /// Answered once every earlier message is applied.
    Barrier(SyncSender<()>),
}

pub(super) struct Appliers<'scope> {
    queues: Vec<SyncSender<Message>>,
    batches: Vec<Vec<PreparedSet>>,
    threads: Vec<ScopedJoinHandle<'scope, ()>>,
}

impl<'scope> Appliers<'scope> {
    /// Starts `threads` appliers (at least one) inside `scope`.
    pub(super) fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        table: &'env Table,
        threads: usize,
    ) -> Self {
        let mut appliers = Appliers {
            queues: Vec::new(),
            batches: Vec::new(),
            threads: Vec::new(),
        };
        for _ in 0..threads.max(1) {
            let (tx, rx) = sync_channel(QUEUE);
            appliers.queues.push(tx);
            appliers.batches.push(Vec::with_capacity(BATCH));
            appliers.threads.push(scope.spawn(move || apply_all(table, rx)));
        }
        appliers
    }

    /// Queues one set for the applier that owns its shard.
    pub(super) fn set(&mut self, set: PreparedSet) {
        let i = set.shard() % self.queues.len();
        self.batches[i].push(set);
        if self.batches[i].len() == BATCH {
            self.send(i);
        }
    }

    /// Returns once every set queued so far is in the table.
    pub(super) fn barrier(&mut self) {
        let mut answers = Vec::with_capacity(self.queues.len());
        for i in 0..self.queues.len() {
            self.send(i);
            let (tx, rx) = sync_channel(1);
            // An applier that died has panicked; the join in `finish` reports it.
            let _ = self.queues[i].send(Message::Barrier(tx));
            answers.push(rx);
        }
        for rx in answers {
            let _ = rx.recv();
        }
    }

    /// Applies what is queued and stops the appliers. An applier's panic
    /// (an allocation failure) is re-raised here.
    pub(super) fn finish(mut self) {
        for i in 0..self.queues.len() {
            self.send(i);
        }
        self.queues.clear();
        for thread in self.threads.drain(..) {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }

    fn send(&mut self, i: usize) {
        if self.batches[i].is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batches[i], Vec::with_capacity(BATCH));
        let _ = self.queues[i].send(Message::Sets(batch));
    }
}

fn apply_all(table: &Table, rx: Receiver<Message>) {
    for message in rx {
        match message {
            Message::Sets(sets) => sets.into_iter().for_each(|set| table.insert_prepared(set)),
            Message::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// How many appliers to run beside the reader on this machine.
pub(super) fn applier_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get().saturating_sub(1))
        .clamp(1, 4)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::engine::mutation::Mutation;

    /// Many appliers must give exactly the table a sequential replay gives:
    /// the last write of each key wins, and deletes (barriers) fall in place.
    #[test]
    fn parallel_apply_equals_sequential_apply() {
        let sequential = Table::default();
        let parallel = Table::default();
        let key = |i: u64| format!("k{}", i * 7919 % 5);
        std::thread::scope(|scope| {
            let mut appliers = Appliers::start(scope, &parallel, 3);
            for lsn in 0..200_000u64 {
                let k = key(lsn);
                if lsn % 9_973 == 0 {
                    let delete = Mutation::Delete {
                        keys: vec![Bytes::from(k)],
                    };
                    sequential.apply(&delete, lsn);
                    appliers.barrier();
                    parallel.apply(&delete, lsn);
                } else {
                    let value = lsn.to_string();
                    sequential.apply_set(k.as_bytes(), value.as_bytes(), None, lsn);
                    appliers.set(parallel.prepare_set(k.as_bytes(), value.as_bytes(), None, lsn));
                }
            }
            appliers.finish();
        });
        assert_eq!(parallel.len(), sequential.len());
        for i in 0..5 {
            let k = format!("k{i}");
            assert_eq!(
                parallel.get(k.as_bytes(), 0),
                sequential.get(k.as_bytes(), 0),
                "{k}"
            );
        }
    }
}

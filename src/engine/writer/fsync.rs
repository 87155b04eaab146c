//! The fsync thread: under `always` it fdatasyncs the log for the writer, so
//! that the writer computes the next batch while the disk works on this one.
//! Without it, a batch's fsync and the next batch's computation take turns
//! on one thread, and the disk idles while commands are computed.
//!
//! One job at a time: the writer appends nothing while a job runs, so the
//! sync covers exactly the batch it was asked for, and the log never rolls
//! under it. When the sync returns, this thread takes the writer's lock and
//! hands it the result itself ([`Writer::synced`]: append the next batch and
//! queue its job, apply and answer this one), then takes that job: no other
//! thread has to wake up between a batch's fsync and its callers. The disk
//! idles while the batch is applied and answered; a second fsync thread,
//! to take the next job meanwhile, was measured and gained nothing (SET,
//! `always`, 50 clients: 39–41k/s against 40–45k/s with one). Once the writer has been
//! taken out to close, or if this thread unwinds, the answer goes on a
//! channel of its own instead, which the writer watches and which never
//! blocks the sender.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Locked, Writer, lock};
use crate::engine::config::Instrument;

/// What the fsync thread reports back, through the writer's own queue.
pub struct Synced {
    pub result: std::io::Result<()>,
    pub took: Duration,
}

/// An fdatasync to make: of `file`, covering the log up to `next_offset`.
pub struct Job {
    pub file: Arc<crate::log::SyncHandle>,
    pub next_offset: crate::log::Offset,
}

pub struct FsyncThread {
    jobs: Option<flume::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl FsyncThread {
    /// Starts the thread; it reports each sync to `writer`, and stops when
    /// the writer is gone or [`FsyncThread::stop`] is called.
    /// `instrument` hears of each sync just before it, on this thread;
    /// each answer goes to `answers`.
    pub fn start(
        writer: Weak<Locked>,
        answers: flume::Sender<Synced>,
        instrument: Option<Arc<dyn Instrument>>,
    ) -> std::io::Result<FsyncThread> {
        let (jobs, queue) = flume::bounded::<Job>(1);
        let thread = std::thread::Builder::new()
            .name("walkv-fsync".into())
            .spawn(move || {
                for job in queue.iter() {
                    let answer = Answer(Some(&answers));
                    if let Some(instrument) = &instrument {
                        instrument.before_sync(job.next_offset);
                    }
                    let started = Instant::now();
                    let result = job.file.sync_data();
                    let synced = Synced {
                        result,
                        took: started.elapsed(),
                    };
                    match writer.upgrade() {
                        Some(writer) => answer.hand_over(synced, &writer),
                        None => answer.send(synced),
                    }
                }
            })?;
        Ok(FsyncThread {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Asks for an fdatasync; the answer comes on the thread's answer
    /// channel. `false` if the thread is gone.
    pub fn sync(&self, job: Job) -> bool {
        self.jobs.as_ref().is_some_and(|jobs| jobs.send(job).is_ok())
    }

    /// Lets the thread finish its job, if any, and joins it.
    /// (On the fsync thread itself, which drops the writer if it held the
    /// last reference, there is nothing to wait for.)
    pub fn stop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

/// A writer dropped without closing (a crash, in tests) still waits for the
/// job in hand, so that no thread of the engine touches the directory after
/// the engine is gone.
impl Drop for FsyncThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends the answer to a job, or a failure if the thread unwinds first (a
/// panic in an instrument, say): the writer must never wait for an answer
/// that cannot come.
struct Answer<'a>(Option<&'a flume::Sender<Synced>>);

impl Answer<'_> {
    fn send(mut self, synced: Synced) {
        if let Some(answers) = self.0.take() {
            let _ = answers.send(synced);
        }
    }

    /// Gives the result to the writer under its lock, or, once it was taken
    /// out to close, on the channel.
    fn hand_over(mut self, synced: Synced, writer: &Locked) {
        let mut guard = lock(writer);
        match guard.as_mut() {
            Some(w) => {
                self.0 = None;
                Writer::synced(w, synced);
            }
            None => self.send(synced),
        }
    }
}

impl Drop for Answer<'_> {
    fn drop(&mut self) {
        if let Some(answers) = self.0.take() {
            let _ = answers.send(Synced {
                result: Err(std::io::Error::other("the fsync thread stopped")),
                took: Duration::ZERO,
            });
        }
    }
}

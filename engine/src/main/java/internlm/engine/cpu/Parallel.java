package internlm.engine.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;

/**
 * A small fork-join for the CPU backend's hot loops: the calling thread plus {@code threads - 1} workers split a range
 * of work items in chunks taken from a shared counter. Workers spin briefly before parking, so the hundreds of
 * parallel regions of one decoded token cost microseconds, not the tens of microseconds of a general-purpose pool.
 * One caller at a time (a backend owns its pool).
 */
public final class Parallel implements AutoCloseable {

    /** Body of a parallel loop over [from, to). */
    @FunctionalInterface
    public interface Range {
        void run(int from, int to);
    }

    private static final long SPIN_NANOS = 100_000;

    /**
     * One parallel loop: its chunks are split into {@code parts} contiguous runs, one per thread (or a single run all
     * threads share). A thread takes chunks from the front of its own run, then steals from the back of the others'.
     * Each run's (front, back) cursor pair lives in one long so a take is a single compare-and-set.
     */
    private static final class Job {
        final Range body;
        final int n, chunk, chunks, parts;
        final AtomicLongArray cursors;
        final AtomicInteger pending;
        volatile Throwable failure;

        Job(Range body, int n, int chunk, int parts) {
            this.body = body;
            this.n = n;
            this.chunk = chunk;
            this.chunks = (n + chunk - 1) / chunk;
            this.parts = Math.min(parts, chunks);
            this.cursors = new AtomicLongArray(this.parts);
            for (int p = 0; p < this.parts; p++) {
                long front = (long) chunks * p / this.parts, back = (long) chunks * (p + 1) / this.parts;
                cursors.set(p, front << 32 | back);
            }
            this.pending = new AtomicInteger(chunks);
        }

        /** Claims a chunk of run p from its front (owner) or back (thief); -1 when the run is empty. */
        private int take(int p, boolean front) {
            while (true) {
                long c = cursors.get(p);
                int f = (int) (c >>> 32), b = (int) c;
                if (f >= b) {
                    return -1;
                }
                long next = front ? (long) (f + 1) << 32 | b : (long) f << 32 | (b - 1);
                if (cursors.compareAndSet(p, c, next)) {
                    return front ? f : b - 1;
                }
            }
        }

        void work(int self) {
            int own = self % parts;
            for (int k = 0; k < parts; k++) {
                int p = (own + k) % parts;
                int i;
                while ((i = take(p, k == 0)) >= 0) {
                    try {
                        body.run(i * chunk, Math.min(n, (i + 1) * chunk));
                    } catch (Throwable t) {
                        failure = t;
                    } finally {
                        pending.decrementAndGet();
                    }
                }
            }
        }
    }

    private final int threads;
    private final Thread[] workers;
    private final Thread[] parked;
    private volatile Job job;
    private volatile boolean closed;

    public Parallel(int threads) {
        this.threads = Math.max(1, threads);
        this.workers = new Thread[this.threads - 1];
        this.parked = new Thread[this.threads - 1];
        for (int i = 0; i < workers.length; i++) {
            final int index = i;
            workers[i] = Thread.ofPlatform().daemon().name("internlm-cpu-" + (i + 1)).unstarted(() -> workerLoop(index));
            workers[i].start();
        }
    }

    public int threads() {
        return threads;
    }

    /**
     * Runs body over [0, n) in chunks of at most {@code grain} items (0 = about four chunks per thread), all threads
     * taking the next chunk from one shared queue: the best balance when chunks are uneven.
     */
    public void forRange(int n, int grain, Range body) {
        run(n, grain, 1, body);
    }

    /**
     * Runs body over [0, n) with each thread owning one contiguous run of [0, n) that it walks in order, in chunks of
     * at most {@code grain} items; a thread that finishes early steals chunks from the far end of the others' runs.
     * For memory-bound loops: long sequential streams per thread keep the hardware prefetchers busy while small chunks
     * still balance the load.
     */
    public void forRangeOwned(int n, int grain, Range body) {
        run(n, grain, threads, body);
    }

    private void run(int n, int grain, int parts, Range body) {
        if (n <= 0) {
            return;
        }
        if (threads == 1 || n == 1) {
            body.run(0, n);
            return;
        }
        int c = grain > 0 ? grain : Math.max(1, (n + threads * 4 - 1) / (threads * 4));
        Job j = new Job(body, n, c, parts);
        job = j;
        for (Thread t : parked) {
            if (t != null) {
                LockSupport.unpark(t);
            }
        }
        j.work(0);
        long start = System.nanoTime();
        while (j.pending.get() > 0) {
            if (System.nanoTime() - start > SPIN_NANOS) {
                Thread.yield();
            } else {
                Thread.onSpinWait();
            }
        }
        Throwable f = j.failure;
        if (f != null) {
            if (f instanceof RuntimeException re) {
                throw re;
            }
            if (f instanceof Error er) {
                throw er;
            }
            throw new IllegalStateException(f);
        }
    }

    public void forRange(int n, Range body) {
        forRange(n, 0, body);
    }

    private void workerLoop(int index) {
        Job seen = null;
        while (!closed) {
            Job j = job;
            if (j != seen && j != null) {
                seen = j;
                j.work(index + 1);
                continue;
            }
            long start = System.nanoTime();
            while (job == seen && !closed && System.nanoTime() - start < SPIN_NANOS) {
                Thread.onSpinWait();
            }
            if (job == seen && !closed) {
                parked[index] = Thread.currentThread();
                if (job == seen && !closed) {
                    LockSupport.parkNanos(20_000_000L);
                }
                parked[index] = null;
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
    }
}

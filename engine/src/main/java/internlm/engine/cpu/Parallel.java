package internlm.engine.cpu;

import java.util.concurrent.atomic.AtomicInteger;
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

    private static final class Job {
        final Range body;
        final int n, chunk, chunks;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger pending;
        volatile Throwable failure;

        Job(Range body, int n, int chunk) {
            this.body = body;
            this.n = n;
            this.chunk = chunk;
            this.chunks = (n + chunk - 1) / chunk;
            this.pending = new AtomicInteger(chunks);
        }

        void work() {
            int i;
            while ((i = next.getAndIncrement()) < chunks) {
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

    /** Runs body over [0, n) in chunks of at most {@code grain} items (0 = about four chunks per thread). */
    public void forRange(int n, int grain, Range body) {
        if (n <= 0) {
            return;
        }
        if (threads == 1 || n == 1) {
            body.run(0, n);
            return;
        }
        int c = grain > 0 ? grain : Math.max(1, (n + threads * 4 - 1) / (threads * 4));
        Job j = new Job(body, n, c);
        job = j;
        for (Thread t : parked) {
            if (t != null) {
                LockSupport.unpark(t);
            }
        }
        j.work();
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
                j.work();
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

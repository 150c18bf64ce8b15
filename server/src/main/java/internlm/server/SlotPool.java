package internlm.server;

import internlm.engine.Engine;
import internlm.engine.generate.Session;

import java.io.IOException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * N sessions (each with its own KV cache) shared by requests, and a bounded first-come first-served queue in front
 * of them. A request first {@link #enter enters} (refused with 503 when N requests run and the queue is full), then
 * {@link Ticket#await awaits} a session; the free session whose cached tokens share the longest prefix with the
 * request's prompt is chosen, so a conversation that comes back finds its earlier turns still evaluated.
 */
final class SlotPool implements AutoCloseable {
    private final Session[] sessions;
    private final boolean[] busy;
    private final Semaphore permits;
    private final int maxQueue;
    private final AtomicInteger waiting = new AtomicInteger();

    SlotPool(Engine engine, int requested, int context, int maxQueue) {
        int slots = Math.min(requested, engine.backend().maxSequences());
        if (slots < requested) {
            System.err.println("note: the " + engine.backend().name() + " backend holds " + slots + " sequence(s) at a time; serving "
                    + slots + " request(s) at once (--parallel " + requested + "), the others queue");
        }
        this.sessions = new Session[slots];
        this.busy = new boolean[slots];
        this.permits = new Semaphore(slots, true);
        this.maxQueue = maxQueue;
        for (int i = 0; i < slots; i++) {
            sessions[i] = engine.newSession(context);
        }
    }

    int slots() {
        return sessions.length;
    }

    int waiting() {
        return waiting.get();
    }

    synchronized int busy() {
        int n = 0;
        for (boolean b : busy) {
            n += b ? 1 : 0;
        }
        return n;
    }

    /** Something to do while a request waits (e.g. a keep-alive write that fails when the client is gone). */
    @FunctionalInterface
    interface KeepAlive {
        void run() throws IOException;
    }

    /** A place in line: closing it without having taken a session gives the place (or the session's permit) back. */
    final class Ticket implements AutoCloseable {
        private boolean queued;
        private boolean done;

        private Ticket(boolean queued) {
            this.queued = queued;
        }

        /**
         * Waits for a free session (running keepAlive about every second meanwhile) and takes the one that best
         * matches the prompt. If keepAlive throws, the exception passes on (closing the ticket gives up the place).
         */
        Lease await(int[] prompt, KeepAlive keepAlive) throws IOException {
            if (done) {
                throw new IllegalStateException("this ticket was used already");
            }
            try {
                while (queued) {
                    if (permits.tryAcquire(1, TimeUnit.SECONDS)) {
                        waiting.decrementAndGet();
                        queued = false;
                    } else {
                        keepAlive.run();
                    }
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while waiting for a free session", e);
            }
            Lease lease = new Lease(take(prompt));
            done = true;
            return lease;
        }

        @Override
        public void close() {
            if (done) {
                return;
            }
            done = true;
            if (queued) {
                waiting.decrementAndGet();
            } else {
                permits.release();
            }
        }
    }

    /** Enters the line: a session now, or a place in the queue, or a 503 when both are full. */
    Ticket enter() {
        try {
            if (permits.tryAcquire(0, TimeUnit.SECONDS)) {
                return new Ticket(false);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (waiting.incrementAndGet() > maxQueue) {
            waiting.decrementAndGet();
            throw new ApiException(503, "server_busy", "the server is busy: " + sessions.length + " requests are being generated and "
                    + maxQueue + " are waiting; retry later", null, "server_busy");
        }
        return new Ticket(true);
    }

    private synchronized int take(int[] prompt) {
        int best = -1, bestLen = -1;
        for (int i = 0; i < sessions.length; i++) {
            if (busy[i]) {
                continue;
            }
            int common = commonPrefix(sessions[i].tokens(), prompt);
            if (common > bestLen) {
                best = i;
                bestLen = common;
            }
        }
        if (best < 0) {
            throw new IllegalStateException("no free session although a permit was granted");
        }
        busy[best] = true;
        return best;
    }

    private static int commonPrefix(int[] a, int[] b) {
        int n = Math.min(a.length, b.length), i = 0;
        while (i < n && a[i] == b[i]) {
            i++;
        }
        return i;
    }

    /** A session held by one request; closing it gives the session back. */
    final class Lease implements AutoCloseable {
        private final int index;
        private boolean closed;

        private Lease(int index) {
            this.index = index;
        }

        Session session() {
            return sessions[index];
        }

        @Override
        public void close() {
            if (closed) {
                return;
            }
            closed = true;
            synchronized (SlotPool.this) {
                busy[index] = false;
            }
            permits.release();
        }
    }

    @Override
    public void close() {
        for (Session s : sessions) {
            s.close();
        }
    }
}

package internlm.engine.generate;

import internlm.engine.model.Backend;
import internlm.engine.model.Batch;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Continuous batching: every running generation advances in one batched forward pass per step. Each step takes the
 * decode row of every generation past its prompt first, then fills what is left of a token budget with prompt chunks
 * in the order the generations arrived (chunked prefill), so a long prompt does not stall the streams already
 * running, and a new request joins at the next step rather than after the others end. One thread runs the steps; the
 * tokens and text each generation produces are queued to the thread that submitted it, which delivers them
 * ({@link Running#deliver}) — a slow client never holds up the batch.
 *
 * <p>What a generation computes does not depend on the batch it runs in (the CPU backend is batch-invariant: see
 * {@code Weight}), so a request gives the same tokens alone or next to others.
 */
public final class Scheduler implements AutoCloseable {
    /** The budget when none is given: prompt rows plus decode rows per step, as llama.cpp's default batch. */
    public static final int DEFAULT_BATCH_TOKENS = 512;

    private final Backend backend;
    private final int batchTokens;
    private final Thread thread;
    private final Object lock = new Object();
    private final List<Running> incoming = new ArrayList<>();   // guarded by lock
    private final List<Running> active = new ArrayList<>();     // the scheduler thread's
    private boolean closed;                                     // guarded by lock
    private final AtomicLong steps = new AtomicLong(), rows = new AtomicLong();
    private volatile int widest;

    /** A scheduler over {@code backend} running at most {@code batchTokens} rows per step (decode rows first). */
    public Scheduler(Backend backend, int batchTokens) {
        if (batchTokens < 1) {
            throw new IllegalArgumentException("the batch token budget must be at least 1, got " + batchTokens);
        }
        this.backend = backend;
        this.batchTokens = batchTokens;
        this.thread = new Thread(this::loop, "internlm-scheduler");
        thread.setDaemon(true);
        thread.start();
    }

    public int batchTokens() {
        return batchTokens;
    }

    /** Steps run, rows run in them, and the widest batch so far. */
    public long steps() {
        return steps.get();
    }

    public long rows() {
        return rows.get();
    }

    public int widestBatch() {
        return widest;
    }

    /**
     * Starts a generation on {@code session} (which the caller holds exclusively until the generation has ended) next
     * to the running ones. Errors in the request itself (a prompt over the context, a token outside the vocabulary)
     * are thrown here; the rest arrives through {@link Running#deliver}.
     */
    public Running submit(Session session, int[] prompt, GenerationParams params) {
        Running r = new Running();
        r.generation = session.start(prompt, params, r.sink);
        synchronized (lock) {
            if (closed) {
                throw new IllegalStateException("the scheduler has been closed");
            }
            incoming.add(r);
            lock.notifyAll();
        }
        return r;
    }

    /** Something to run about once a second while a generation runs (e.g. a keep-alive write that fails when the client is gone). */
    @FunctionalInterface
    public interface Idle {
        void run() throws IOException;
    }

    /** A submitted generation, as seen from the thread that submitted it. */
    public static final class Running {
        private sealed interface Event permits TextEvent, StepEvent, DoneEvent {}

        private record TextEvent(int token, String text) implements Event {}

        private record StepEvent(GenerationResult.Step step) implements Event {}

        private record DoneEvent(GenerationResult result, Throwable failure) implements Event {}

        private final BlockingQueue<Event> events = new LinkedBlockingQueue<>();
        private volatile boolean consumerGone;
        private Generation generation;
        private boolean delivered;

        /** Runs on the scheduler thread: queues, never blocks, and reports a consumer that has gone. */
        private final TokenSink sink = new TokenSink() {
            @Override
            public boolean accept(int token, String text) {
                events.add(new TextEvent(token, text));
                return !consumerGone;
            }

            @Override
            public void step(GenerationResult.Step s) {
                events.add(new StepEvent(s));
            }
        };

        /** Asks the generation to end; it does at the next step (finish reason "cancelled"). Any thread. */
        public void cancel() {
            consumerGone = true;
            generation.cancel();
        }

        /**
         * Hands what the generation produces to {@code target} on the calling thread, in order, until it ends, and
         * returns its result, running {@code idle} about once a second meanwhile. When {@code target.accept} returns
         * false, or {@code idle} throws, the generation is cancelled (the exception passes on once it has ended). A
         * failure of the forward pass is rethrown here.
         */
        public GenerationResult deliver(TokenSink target, Idle idle) throws IOException {
            if (delivered) {
                throw new IllegalStateException("already delivered");
            }
            delivered = true;
            IOException idleFailure = null;
            long lastIdle = System.nanoTime();
            while (true) {
                Event e;
                try {
                    e = events.poll(1, TimeUnit.SECONDS);
                } catch (InterruptedException x) {
                    // keep waiting for the end (the next step), as a cancelled generation; the interrupt is reported by the exception
                    idleFailure = new IOException("interrupted while waiting for tokens", x);
                    cancel();
                    continue;
                }
                if (idleFailure == null && System.nanoTime() - lastIdle >= 1_000_000_000L) {
                    lastIdle = System.nanoTime();
                    try {
                        idle.run();
                    } catch (IOException x) {
                        idleFailure = x;
                        cancel();
                    }
                }
                if (e == null) {
                    continue;
                }
                switch (e) {
                    case TextEvent t -> {
                        if (!consumerGone && !target.accept(t.token(), t.text())) {
                            cancel();
                        }
                    }
                    case StepEvent s -> {
                        if (!consumerGone) {
                            target.step(s.step());
                        }
                    }
                    case DoneEvent d -> {
                        if (idleFailure != null) {
                            throw idleFailure;
                        }
                        if (d.failure() != null) {
                            if (d.failure() instanceof RuntimeException re) {
                                throw re;
                            }
                            if (d.failure() instanceof Error er) {
                                throw er;
                            }
                            throw new IllegalStateException(d.failure());
                        }
                        return d.result();
                    }
                }
            }
        }

        private void finished() {
            Generation g = generation;
            events.add(new DoneEvent(g.result(), g.failure()));
        }
    }

    private void loop() {
        Batch batch = new Batch();
        List<Running> inBatch = new ArrayList<>();
        while (true) {
            synchronized (lock) {
                while (active.isEmpty() && incoming.isEmpty() && !closed) {
                    try {
                        lock.wait();
                    } catch (InterruptedException e) {
                        closed = true;
                    }
                }
                active.addAll(incoming);
                incoming.clear();
                if (closed) {
                    break;
                }
            }
            batch.clear();
            inBatch.clear();
            // decode rows first: one per generation past its prompt
            int decodeRows = 0;
            for (Running r : active) {
                if (!r.generation.inPrompt() && r.generation.addRows(batch, 1) > 0) {
                    inBatch.add(r);
                    decodeRows++;
                }
            }
            // then prompt chunks, oldest request first, in what is left of the budget (always some, so prompts advance)
            int budget = Math.max(batchTokens - decodeRows, Math.max(1, batchTokens / 4));
            for (Running r : active) {
                if (budget <= 0) {
                    break;
                }
                if (r.generation.inPrompt()) {
                    int n = r.generation.addRows(batch, budget);
                    if (n > 0) {
                        inBatch.add(r);
                        budget -= n;
                    }
                }
            }
            if (!batch.isEmpty()) {
                try {
                    backend.forward(batch);
                    steps.incrementAndGet();
                    rows.addAndGet(batch.size());
                    widest = Math.max(widest, batch.size());
                    for (Running r : inBatch) {
                        try {
                            r.generation.afterForward(batch);
                        } catch (RuntimeException | Error e) {
                            r.generation.failed(e);
                        }
                    }
                } catch (RuntimeException | Error e) {
                    for (Running r : inBatch) {
                        r.generation.failed(e);
                    }
                }
            }
            for (int i = active.size() - 1; i >= 0; i--) {
                Running r = active.get(i);
                if (r.generation.done()) {
                    active.remove(i);
                    r.finished();
                }
            }
        }
        IllegalStateException stop = new IllegalStateException("the server is shutting down");
        for (Running r : active) {
            if (!r.generation.done()) {
                r.generation.failed(stop);
            }
            r.finished();
        }
        active.clear();
    }

    /** Stops the scheduler: running generations end with an error. */
    @Override
    public void close() {
        synchronized (lock) {
            closed = true;
            lock.notifyAll();
        }
        try {
            thread.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}

package internlm.kernels;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * Runs a KernelContext kernel on the JVM the way a GPU would: one thread per work-item, work-groups of
 * {@code local} items that share their local arrays and meet at real barriers, ids set per item. (On a plain JVM
 * TornadoVM's own KernelContext has ids of 0, no-op barriers and unshared local arrays.)
 */
final class WorkGroupEmulator {
    private WorkGroupEmulator() {}

    private static final Field[] FIELDS = new Field[6];

    static {
        try {
            String[] names = {"globalIdx", "localIdx", "groupIdx", "globalGroupSizeX", "localGroupSizeX", "globalIdy"};
            for (int i = 0; i < names.length; i++) {
                FIELDS[i] = KernelContext.class.getField(names[i]);
                FIELDS[i].setAccessible(true);
            }
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** Local memory of one work-group: arrays handed out in allocation order, shared by its items. */
    private static final class Group {
        final CyclicBarrier barrier;
        final List<Object> arrays = new ArrayList<>();

        Group(int size) {
            barrier = new CyclicBarrier(size);
        }

        synchronized Object array(int index, Class<?> type, int n) {
            while (arrays.size() <= index) {
                arrays.add(null);
            }
            if (arrays.get(index) == null) {
                arrays.set(index, type == float.class ? new float[n] : new int[n]);
            }
            return arrays.get(index);
        }
    }

    static final class Ctx extends KernelContext {
        private final Group group;
        private int allocations;

        Ctx(Group group, int gid, int lid, int grp, int global, int local) {
            this.group = group;
            try {
                FIELDS[0].set(this, gid);
                FIELDS[1].set(this, lid);
                FIELDS[2].set(this, grp);
                FIELDS[3].set(this, global);
                FIELDS[4].set(this, local);
                FIELDS[5].set(this, 0);
            } catch (IllegalAccessException e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public void localBarrier() {
            try {
                group.barrier.await(20, TimeUnit.SECONDS);
            } catch (InterruptedException | BrokenBarrierException | TimeoutException e) {
                throw new IllegalStateException("barrier not reached by every work-item of the group (divergent barrier?)", e);
            }
        }

        @Override
        public void globalBarrier() {
            throw new UnsupportedOperationException("kernels must not use global barriers");
        }

        @Override
        public float[] allocateFloatLocalArray(int n) {
            return (float[]) group.array(allocations++, float.class, n);
        }

        @Override
        public int[] allocateIntLocalArray(int n) {
            return (int[]) group.array(allocations++, int.class, n);
        }

        @Override
        public void atomicAdd(IntArray a, int i, int v) {
            synchronized (WorkGroupEmulator.class) {
                a.set(i, a.get(i) + v);
            }
        }

        @Override
        public void atomicAdd(FloatArray a, int i, float v) {
            synchronized (WorkGroupEmulator.class) {
                a.set(i, a.get(i) + v);
            }
        }
    }

    /** Runs kernel over {@code global} work-items in groups of {@code local} (global must be a multiple of local). */
    static void run(int global, int local, Consumer<KernelContext> kernel) {
        if (global % local != 0 || Integer.bitCount(local) != 1) {
            throw new IllegalArgumentException("global " + global + " must be a multiple of the power-of-two local size " + local);
        }
        for (int g = 0; g < global / local; g++) {
            Group group = new Group(local);
            Thread[] threads = new Thread[local];
            Throwable[] failure = new Throwable[1];
            for (int l = 0; l < local; l++) {
                Ctx ctx = new Ctx(group, g * local + l, l, g, global, local);
                threads[l] = Thread.ofVirtual().unstarted(() -> {
                    try {
                        kernel.accept(ctx);
                    } catch (Throwable t) {
                        synchronized (failure) {
                            failure[0] = t;
                        }
                        group.barrier.reset();
                    }
                });
            }
            for (Thread t : threads) {
                t.start();
            }
            for (Thread t : threads) {
                try {
                    t.join();
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            }
            if (failure[0] != null) {
                throw new AssertionError("work-group " + g + " failed", failure[0]);
            }
        }
    }

    /** Rounds n up to a multiple of local. */
    static int global(int n, int local) {
        return (n + local - 1) / local * local;
    }
}

package internlm.engine.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Native memory for repacked weights, backed by transparent huge pages where the OS allows it (Linux
 * {@code mmap} + {@code madvise(MADV_HUGEPAGE)} through the FFM API — no native code of ours). Streaming gigabytes of
 * weights per token through 4 KiB pages costs a TLB miss every 4 KiB; 2 MiB pages make the CPU matmuls markedly
 * faster. Falls back to an ordinary allocation elsewhere.
 */
final class HugeMemory {
    private HugeMemory() {}

    private static final long HUGE = 2L << 20;
    private static final int PROT_READ = 1, PROT_WRITE = 2, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20, MADV_HUGEPAGE = 14;
    private static final MethodHandle MMAP, MADVISE, MUNMAP;

    static {
        MethodHandle mmap = null, madvise = null, munmap = null;
        try {
            if (System.getProperty("os.name", "").toLowerCase().contains("linux")) {
                Linker linker = Linker.nativeLinker();
                var libc = linker.defaultLookup();
                mmap = linker.downcallHandle(libc.find("mmap").orElseThrow(), FunctionDescriptor.of(ValueLayout.ADDRESS,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
                madvise = linker.downcallHandle(libc.find("madvise").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
                munmap = linker.downcallHandle(libc.find("munmap").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
            }
        } catch (Throwable t) {
            mmap = null;
        }
        MMAP = mmap;
        MADVISE = madvise;
        MUNMAP = munmap;
    }

    /** Allocates {@code bytes} (zeroed) whose lifetime is tied to {@code arena}. */
    static MemorySegment allocate(Arena arena, long bytes) {
        if (MMAP != null && bytes >= HUGE) {
            try {
                long len = (bytes + HUGE - 1) / HUGE * HUGE;
                MemorySegment addr = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, len + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0L);
                if (addr.address() != -1L && addr.address() != 0) {
                    long base = addr.address();
                    long aligned = (base + HUGE - 1) & -HUGE;
                    int ignored = (int) MADVISE.invokeExact(MemorySegment.ofAddress(aligned), len, MADV_HUGEPAGE);
                    final long total = len + HUGE;
                    return MemorySegment.ofAddress(aligned).reinterpret(bytes, arena, s -> unmap(base, total));
                }
            } catch (Throwable t) {
                // fall through to a plain allocation
            }
        }
        return arena.allocate(bytes, 64);
    }

    private static void unmap(long base, long len) {
        try {
            int ignored = (int) MUNMAP.invokeExact(MemorySegment.ofAddress(base), len);
        } catch (Throwable t) {
            // nothing sensible to do while releasing memory
        }
    }
}

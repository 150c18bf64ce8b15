package internlm.kernels;

/**
 * What the batched kernels read about the rows of a forward pass: one IntArray ("meta"), copied to the device once per
 * batch, and a FloatArray of RoPE tables, one per row. The row count is data, so one compiled graph serves every batch
 * size up to {@link #MAX_ROWS} without a new JIT compilation.
 *
 * <p>Layout of meta: [{@link #ROWS}] rows in the batch, [{@link #OUT_ROWS}] rows that want an output, [{@link #MODE}]
 * {@link #MODE_INVARIANT} to run one-row batches through the batched products too, [{@link #LANES}] work-items per
 * output row of the lane products, then per row its token, position,
 * cache base (the first position of its sequence's slot in the layer's KV array), the list of output rows,
 * [{@link #SPLITS}] the active context splits of the flash-decoding attention and [{@link #TILES}] the variant of the
 * tiled products for the device.
 * Activations of row b live at b·width in the batched buffers; output rows are gathered to 0..outRows−1.
 */
public final class BatchLayout {
    private BatchLayout() {}

    /**
     * Largest batch (rows per forward pass) the kernels support: the products keep TILE_ROWS × MAX_ROWS accumulators in
     * local memory (see {@link GemmKernels}); longer prompts run in passes of this many rows.
     */
    public static final int MAX_ROWS = 64;

    public static final int ROWS = 0;
    public static final int OUT_ROWS = 1;
    public static final int MODE = 2;
    /** MODE value: one-row batches use the batched (tiled) products, so results do not depend on the batch size. */
    public static final int MODE_INVARIANT = 1;
    /**
     * Work-items per output row in the lane products (a power of two up to the work-group size; 0 = the whole group):
     * a group of {@code wg} items computes wg / lanes consecutive rows. Set once by the host.
     */
    public static final int LANES = 3;
    public static final int TOKEN = 4;
    public static final int POSITION = TOKEN + MAX_ROWS;
    public static final int CACHE_BASE = POSITION + MAX_ROWS;
    public static final int OUT_ROW = CACHE_BASE + MAX_ROWS;
    /** Splits of the context the flash-decoding attention uses in this pass (1 … the graph's splits). */
    public static final int SPLITS = OUT_ROW + MAX_ROWS;
    /**
     * Which tiled products run batches of more than {@link GemmKernels#LANE_BATCH} rows (and every batch in
     * {@link #MODE_INVARIANT} mode): {@link #TILES_GROUPS} or {@link #TILES_ITEMS}; set once by the host for the device.
     */
    public static final int TILES = SPLITS + 1;
    /** TILES value: work-group tiles in local memory (GPUs). */
    public static final int TILES_GROUPS = 0;
    /** TILES value: each work-group's first work-item a register-tiled product of its own rows (CPU devices). */
    public static final int TILES_ITEMS = 1;
    public static final int SIZE = TILES + 1;
}

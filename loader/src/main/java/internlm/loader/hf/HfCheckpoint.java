package internlm.loader.hf;

import com.fasterxml.jackson.databind.JsonNode;
import internlm.loader.ModelFormatException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * The weights of a Hugging Face model directory: {@code model.safetensors}, or the shards named by
 * {@code model.safetensors.index.json} ({@code weight_map}: tensor name → shard file), or — with neither — every
 * {@code *.safetensors} file of the directory. The index is checked against the shards: every shard named must be a
 * plain file name in the directory (no paths), every tensor it maps must be in that shard, and every tensor of a
 * shard must be in the map; no tensor may appear twice. PyTorch pickle checkpoints ({@code *.bin}, {@code *.pt}) are
 * refused with instructions to convert them (unpickling can run arbitrary code).
 */
public final class HfCheckpoint implements AutoCloseable {
    public static final String INDEX = "model.safetensors.index.json";
    public static final String SINGLE = "model.safetensors";

    /** A tensor with the file it lives in (for messages). */
    public record Entry(SafetensorsFile file, SafetensorsFile.Tensor tensor) {}

    private final Path dir;
    private final List<SafetensorsFile> files;
    private final Map<String, Entry> tensors;

    private HfCheckpoint(Path dir, List<SafetensorsFile> files, Map<String, Entry> tensors) {
        this.dir = dir;
        this.files = files;
        this.tensors = tensors;
    }

    public static HfCheckpoint open(Path dir) {
        Path index = dir.resolve(INDEX);
        if (Files.isRegularFile(index)) {
            return fromIndex(dir, index);
        }
        Path single = dir.resolve(SINGLE);
        if (Files.isRegularFile(single)) {
            return fromFiles(dir, List.of(single));
        }
        List<Path> found = list(dir, ".safetensors");
        if (!found.isEmpty()) {
            return fromFiles(dir, found);
        }
        List<Path> pickles = new ArrayList<>(list(dir, ".bin"));
        pickles.addAll(list(dir, ".pt"));
        pickles.addAll(list(dir, ".pth"));
        if (!pickles.isEmpty()) {
            throw new ModelFormatException(dir, pickleMessage(pickles.getFirst().getFileName().toString()));
        }
        throw new ModelFormatException(dir, "has no weights: expected " + SINGLE + ", or " + INDEX + " with its shards");
    }

    /** What to do with a PyTorch pickle checkpoint. */
    public static String pickleMessage(String fileName) {
        return "holds PyTorch pickle weights (" + fileName + "), which this engine does not read: unpickling can run arbitrary code. "
                + "Convert the directory to safetensors first, e.g. in Python with transformers: "
                + "m = AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True, torch_dtype='auto'); "
                + "m.save_pretrained(OUT, safe_serialization=True); "
                + "AutoTokenizer.from_pretrained(DIR, trust_remote_code=True).save_pretrained(OUT) — then load OUT";
    }

    private static List<Path> list(Path dir, String suffix) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(suffix) && Files.isRegularFile(p)).sorted().toList();
        } catch (IOException e) {
            throw new ModelFormatException(dir, "cannot list: " + e.getMessage(), e);
        }
    }

    private static HfCheckpoint fromIndex(Path dir, Path index) {
        JsonNode root = HfConfig.readJson(index, 256L << 20);
        if (!root.isObject()) {
            throw new ModelFormatException(index, "is not a JSON object");
        }
        JsonNode md = root.get("metadata");
        if (md != null && !md.isNull() && !md.isObject()) {
            throw new ModelFormatException(index, "metadata must be an object");
        }
        JsonNode wm = root.get("weight_map");
        if (wm == null || !wm.isObject()) {
            throw new ModelFormatException(index, "weight_map is missing or not an object");
        }
        if (wm.isEmpty()) {
            throw new ModelFormatException(index, "weight_map is empty");
        }
        Map<String, String> map = new LinkedHashMap<>();
        TreeSet<String> shardNames = new TreeSet<>();
        for (Map.Entry<String, JsonNode> e : wm.properties()) {
            if (!e.getValue().isTextual()) {
                throw new ModelFormatException(index, "weight_map['" + e.getKey() + "'] must be a file name, found " + SafetensorsFile.abbreviate(e.getValue().toString()));
            }
            String f = e.getValue().asText();
            if (!isPlainFileName(f)) {
                throw new ModelFormatException(index, "weight_map['" + e.getKey() + "'] = '" + SafetensorsFile.abbreviate(f)
                        + "' is not a plain file name in the model directory");
            }
            map.put(e.getKey(), f);
            shardNames.add(f);
        }
        List<Path> shards = new ArrayList<>();
        for (String s : shardNames) {
            Path p = dir.resolve(s);
            if (!Files.isRegularFile(p)) {
                throw new ModelFormatException(index, "names shard '" + s + "', which is not in the directory");
            }
            shards.add(p);
        }
        HfCheckpoint c = fromFiles(dir, shards);
        try {
            for (Map.Entry<String, String> e : map.entrySet()) {
                Entry t = c.tensors.get(e.getKey());
                if (t == null) {
                    throw new ModelFormatException(index, "maps tensor '" + e.getKey() + "' to " + e.getValue() + ", which does not hold it");
                }
                if (!t.file().path().getFileName().toString().equals(e.getValue())) {
                    throw new ModelFormatException(index, "maps tensor '" + e.getKey() + "' to " + e.getValue() + " but it is in " + t.file().path().getFileName());
                }
            }
            for (Entry t : c.tensors.values()) {
                if (!map.containsKey(t.tensor().name())) {
                    throw new ModelFormatException(index, "does not list tensor '" + t.tensor().name() + "' of " + t.file().path().getFileName() + " (stale or corrupt index)");
                }
            }
            return c;
        } catch (RuntimeException e) {
            c.close();
            throw e;
        }
    }

    static boolean isPlainFileName(String f) {
        return !f.isEmpty() && f.length() < 256 && !f.equals(".") && !f.equals("..") && f.indexOf('/') < 0 && f.indexOf('\\') < 0
                && f.indexOf('\0') < 0 && f.indexOf(':') < 0;
    }

    private static HfCheckpoint fromFiles(Path dir, List<Path> paths) {
        List<SafetensorsFile> files = new ArrayList<>();
        Map<String, Entry> tensors = new LinkedHashMap<>();
        try {
            for (Path p : paths) {
                SafetensorsFile f = SafetensorsFile.open(p);
                files.add(f);
                for (SafetensorsFile.Tensor t : f.tensors().values()) {
                    Entry prev = tensors.putIfAbsent(t.name(), new Entry(f, t));
                    if (prev != null) {
                        throw new ModelFormatException(p, "tensor '" + t.name() + "' is also in " + prev.file().path().getFileName());
                    }
                }
            }
        } catch (RuntimeException e) {
            files.forEach(SafetensorsFile::close);
            throw e;
        }
        return new HfCheckpoint(dir, Collections.unmodifiableList(files), Collections.unmodifiableMap(tensors));
    }

    public Path dir() {
        return dir;
    }

    public List<SafetensorsFile> files() {
        return files;
    }

    public Map<String, Entry> tensors() {
        return tensors;
    }

    public Entry get(String name) {
        return tensors.get(name);
    }

    @Override
    public void close() {
        for (SafetensorsFile f : files) {
            f.close();
        }
    }
}

package internlm.engine.chat;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Expected strings are what CPython's json.dumps(obj, ensure_ascii=False) prints for the same objects. */
class PyJsonTest {
    @Test
    void writesLikePythonJsonDumps() throws Exception {
        var n = new ObjectMapper().readTree("{\"b\":[1,2.5,\"x\\\"y\\n\\t\\u0001\",null,true,false],\"a\":{},\"c\":\"中文 ü\",\"d\":[],\"e\":-0.5,\"f\":\"back\\\\slash /\"}");
        assertEquals("{\"b\": [1, 2.5, \"x\\\"y\\n\\t\\u0001\", null, true, false], \"a\": {}, \"c\": \"中文 ü\", \"d\": [], \"e\": -0.5, \"f\": \"back\\\\slash /\"}",
                PyJson.dumps(n));
        assertEquals("12345678901234567890", PyJson.dumps(new ObjectMapper().readTree("12345678901234567890")));
    }

    @Test
    void floatsLikePythonRepr() {
        assertEquals("1e-05", PyJson.floatRepr(1e-5));
        assertEquals("0.0001", PyJson.floatRepr(1e-4));
        assertEquals("1e+16", PyJson.floatRepr(1e16));
        assertEquals("1234567890123456.0", PyJson.floatRepr(1234567890123456.0));
        assertEquals("1.2345678901234568e+16", PyJson.floatRepr(12345678901234567.0));
        assertEquals("123.5", PyJson.floatRepr(123.5));
        assertEquals("100.0", PyJson.floatRepr(100.0));
        assertEquals("0.1", PyJson.floatRepr(0.1));
        assertEquals("1.5e-07", PyJson.floatRepr(1.5e-7));
        assertEquals("-2.0", PyJson.floatRepr(-2.0));
        assertEquals("0.0", PyJson.floatRepr(0.0));
    }
}

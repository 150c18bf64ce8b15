package internlm.cli;

import internlm.engine.tornado.TornadoSupport;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

@Command(name = "devices", mixinStandardHelpOptions = true, description = "List TornadoVM backends and devices (use them with --device B:D).")
final class DevicesCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        String why = TornadoSupport.unavailableReason();
        if (why != null) {
            System.out.println("TornadoVM: not available. " + why + ".");
            System.out.println("The CPU backend works without it (--backend cpu).");
            return 0;
        }
        System.out.println("TornadoVM devices (--device BACKEND:DEVICE):");
        for (TornadoSupport.DeviceInfo d : TornadoSupport.devices()) {
            System.out.printf("  %s  %-8s %-10s %s, %.1f GiB%s%n", d.id(), d.backendName(), d.type(), d.name(), d.globalMemory() / 1073741824.0,
                    d.isDefault() ? "  (default)" : "");
        }
        return 0;
    }
}

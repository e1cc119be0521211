// Command fuse-device-plugin grants /dev/fuse to the pods that request it, through the
// kubelet's device-plugin API (k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1).
//
// A pod given SYS_ADMIN and a hostPath /dev/fuse still cannot open the device: the
// container's device cgroup does not allow it, and only `privileged` would. A device
// granted by a device plugin is added to that cgroup by the runtime, so a pod asking for
// `resources.limits: {<resource>: 1}` plus SYS_ADMIN mounts FUSE filesystems (oneclient)
// without running privileged.
//
// /dev/fuse can be shared by any number of pods, so the plugin advertises --devices
// interchangeable units of one resource; each allocated unit is the same host device.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// resourceName follows the extended-resource rule: a DNS subdomain prefix, a slash, a name.
var resourceName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)

type options struct {
	resource   string
	devices    int
	devicePath string
	pluginDir  string
	interval   time.Duration
}

func parseOptions(args []string) (options, error) {
	var opts options
	flags := flag.NewFlagSet("fuse-device-plugin", flag.ContinueOnError)
	flags.StringVar(&opts.resource, "resource-name", "primage.eu/fuse", "extended resource pods request")
	flags.IntVar(&opts.devices, "devices", 64, "pods of one node that may hold the device at once")
	flags.StringVar(&opts.devicePath, "device", "/dev/fuse", "the FUSE device on the node")
	flags.StringVar(&opts.pluginDir, "plugin-dir", pluginapi.DevicePluginPath, "the kubelet's device-plugin folder")
	flags.DurationVar(&opts.interval, "health-interval", 5*time.Second, "how often the device and the registration are checked")
	if err := flags.Parse(args); err != nil {
		return opts, err
	}
	if !resourceName.MatchString(opts.resource) {
		return opts, fmt.Errorf("--resource-name %q is not an extended resource name (expected domain/name, e.g. primage.eu/fuse)", opts.resource)
	}
	if opts.devices < 1 {
		return opts, fmt.Errorf("--devices must be at least 1, got %d", opts.devices)
	}
	return opts, nil
}

// plugin is the DevicePlugin service for one resource.
type plugin struct {
	pluginapi.UnimplementedDevicePluginServer
	opts   options
	socket string
}

func newPlugin(opts options) *plugin {
	name := strings.NewReplacer("/", "-", ".", "-").Replace(opts.resource)
	return &plugin{opts: opts, socket: filepath.Join(opts.pluginDir, name+".sock")}
}

func (p *plugin) health() string {
	info, err := os.Stat(p.opts.devicePath)
	if err != nil || info.Mode()&os.ModeCharDevice == 0 {
		return pluginapi.Unhealthy
	}
	return pluginapi.Healthy
}

func (p *plugin) devices(health string) []*pluginapi.Device {
	list := make([]*pluginapi.Device, p.opts.devices)
	for i := range list {
		list[i] = &pluginapi.Device{ID: fmt.Sprintf("fuse-%d", i), Health: health}
	}
	return list
}

func (p *plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{}, nil
}

// ListAndWatch sends the units, then again whenever the device's health changes.
func (p *plugin) ListAndWatch(_ *pluginapi.Empty, stream grpc.ServerStreamingServer[pluginapi.ListAndWatchResponse]) error {
	last := ""
	ticker := time.NewTicker(p.opts.interval)
	defer ticker.Stop()
	for {
		if health := p.health(); health != last {
			if err := stream.Send(&pluginapi.ListAndWatchResponse{Devices: p.devices(health)}); err != nil {
				return err
			}
			log.Printf("advertised %d units of %s (%s)", p.opts.devices, p.opts.resource, health)
			last = health
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-ticker.C:
		}
	}
}

// Allocate gives every requesting container the host's FUSE device, read-write.
func (p *plugin) Allocate(_ context.Context, request *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	response := &pluginapi.AllocateResponse{}
	for range request.ContainerRequests {
		response.ContainerResponses = append(response.ContainerResponses, &pluginapi.ContainerAllocateResponse{
			Devices: []*pluginapi.DeviceSpec{{
				ContainerPath: p.opts.devicePath,
				HostPath:      p.opts.devicePath,
				Permissions:   "rw",
			}},
		})
	}
	return response, nil
}

// serve listens on the plugin's socket and registers with the kubelet.
func (p *plugin) serve() (*grpc.Server, error) {
	if err := os.Remove(p.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	listener, err := net.Listen("unix", p.socket)
	if err != nil {
		return nil, err
	}
	server := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(server, p)
	go func() {
		if err := server.Serve(listener); err != nil {
			log.Printf("plugin server stopped: %v", err)
		}
	}()
	if err := p.register(); err != nil {
		server.Stop()
		return nil, err
	}
	log.Printf("registered %s with the kubelet (socket %s)", p.opts.resource, p.socket)
	return server, nil
}

func (p *plugin) register() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kubelet := "unix://" + filepath.Join(p.opts.pluginDir, filepath.Base(pluginapi.KubeletSocket))
	conn, err := grpc.NewClient(kubelet, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
		Version:      pluginapi.Version,
		Endpoint:     filepath.Base(p.socket),
		ResourceName: p.opts.resource,
		Options:      &pluginapi.DevicePluginOptions{},
	})
	if err != nil {
		return fmt.Errorf("registering with the kubelet at %s: %w", kubelet, err)
	}
	return nil
}

// run serves until a signal arrives. A restarting kubelet removes every socket of the
// folder, so a vanished socket means: serve again and register again.
func run(opts options) error {
	p := newPlugin(opts)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	var server *grpc.Server
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		if _, err := os.Stat(p.socket); server != nil && err != nil {
			log.Printf("socket %s is gone (kubelet restarted?): registering again", p.socket)
			server.Stop()
			server = nil
		}
		if server == nil {
			var err error
			if server, err = p.serve(); err != nil {
				log.Printf("not registered yet: %v", err)
			}
		}
		select {
		case sig := <-stop:
			log.Printf("%v: stopping", sig)
			if server != nil {
				server.Stop()
			}
			_ = os.Remove(p.socket)
			return nil
		case <-ticker.C:
		}
	}
}

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	opts, err := parseOptions(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "fuse-device-plugin:", err)
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		log.Fatal(err)
	}
}

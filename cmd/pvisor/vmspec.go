package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/sched"
)

// vmSpec is one VM of a `pvisor run`, validated.
type vmSpec struct {
	name, kernel, initrd, cmdline string
	memBytes                      uint64
	vcpus                         int
	mode                          cpu.Mode
	weight, cap                   int // 0 = default weight / no cap
	disks                         []hv.Disk
	rng                           bool
	nics                          []hv.NIC
	// cpus is the VM's cpuset (sorted host CPUs, nil: none);
	// cpusExclusive reserves it for the VM.
	cpus          []int
	cpusExclusive bool
}

// vmKeys are the keys of a --vm spec and of a [[vm]] table of a config
// file, with what they set.
var vmKeys = []struct{ key, doc string }{
	{"name", "name in messages, console prefixes and accounting"},
	{"kernel", "guest kernel"},
	{"initrd", "initramfs image"},
	{"mem", "memory (K, M or G suffix)"},
	{"vcpus", "number of vCPUs"},
	{"mode", "pv, trap or hwassist"},
	{"cpu-weight", "share under contention (default 256)"},
	{"cpu-cap", "ceiling, percent of one host CPU (0 = none)"},
	{"cpus", "host CPUs its vCPUs run on, in Linux's list syntax (0-3,6), as --cpus; in a --vm spec the items after cpus= that are not key=value continue the list"},
	{"cpus-exclusive", "true reserves the cpus for this VM alone, as --cpus-exclusive"},
	{"disk", "a virtio-blk disk, PATH[,ro][,overlay=FILE][,key=FILE|,passphrase=FILE], as --disk; repeatable"},
	{"net", "a NIC, segment=NAME[,mac=MAC][,bw=BYTES/s][,ops=N/s], as --net; repeatable"},
	{"cmdline", "kernel command line; must come last, takes the rest of the spec, commas included"},
}

// maxName is the longest VM name.
const maxName = 64

// checkName is the one rule for VM names, from --name, --vm and config
// files alike: 1 to maxName letters, digits, '.', '_' or '-', starting
// with a letter or digit (names prefix console lines and are typed in
// pvisor ctl requests).
func checkName(name string) error {
	ok := name != "" && len(name) <= maxName
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		ok = ok && (alnum || i > 0 && strings.ContainsRune("._-", c))
	}
	if !ok {
		return fmt.Errorf("name %q: want 1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit", name, maxName)
	}
	return nil
}

// set assigns key=value to the spec.
func (s *vmSpec) set(key, val string) error {
	var err error
	switch key {
	case "name":
		if err := checkName(val); err != nil {
			return err
		}
		s.name = val
	case "kernel":
		s.kernel = val
	case "initrd":
		s.initrd = val
	case "cmdline":
		s.cmdline = val
	case "mem":
		if s.memBytes, err = parseSize(val); err != nil {
			return fmt.Errorf("mem: %v", err)
		}
	case "vcpus":
		if s.vcpus, err = strconv.Atoi(val); err != nil || s.vcpus < 1 {
			return fmt.Errorf("vcpus %q: want a number of at least 1", val)
		}
	case "mode":
		if s.mode, err = cpu.ParseMode(val); err != nil {
			return err
		}
	case "cpu-weight", "cpu_weight":
		if s.weight, err = strconv.Atoi(val); err != nil || s.weight < 1 || s.weight > sched.MaxWeight {
			return fmt.Errorf("cpu-weight %q: want 1..%d", val, sched.MaxWeight)
		}
	case "cpu-cap", "cpu_cap":
		if s.cap, err = strconv.Atoi(strings.TrimSuffix(val, "%")); err != nil || s.cap < 0 {
			return fmt.Errorf("cpu-cap %q: want a percentage of one host CPU, 0 for none", val)
		}
	case "cpus":
		if s.cpus, err = sched.ParseCPUs(val); err != nil {
			return fmt.Errorf("cpus: %v", err)
		}
	case "cpus-exclusive", "cpus_exclusive":
		switch val {
		case "true":
			s.cpusExclusive = true
		case "false":
			s.cpusExclusive = false
		default:
			return fmt.Errorf("cpus-exclusive %q: want true or false", val)
		}
	case "disk":
		d, err := parseDisk(val)
		if err != nil {
			return err
		}
		s.disks = append(append([]hv.Disk(nil), s.disks...), d)
	case "net":
		n, err := parseNIC(val)
		if err != nil {
			return err
		}
		s.nics = append(append([]hv.NIC(nil), s.nics...), n)
	default:
		keys := make([]string, len(vmKeys))
		for i, k := range vmKeys {
			keys[i] = k.key
		}
		return fmt.Errorf("unknown key %q: want one of %s", key, strings.Join(keys, ", "))
	}
	return nil
}

// diskKeyOptions are the options of a --vm spec's disk= item besides ro
// (an encrypted image's key).
var diskKeyOptions = []string{"key", "passphrase"}

// parseVMSpec reads a --vm value, key=value pairs separated by commas, over
// the defaults in base. cmdline= takes the rest of the value. A disk's and
// a NIC's options follow it as items of their own, as in --disk and --net:
// disk=PATH,ro,overlay=FILE,key=FILE and net=segment=NAME,mac=MAC,bw=BYTES/s,ops=N/s.
// A cpuset's list keeps its commas as in --cpus: the items after cpus=
// that are not key=value continue it (cpus=0,2-3,mem=16M), so one syntax
// serves --cpus, --vm and config files.
func parseVMSpec(spec string, base vmSpec) (vmSpec, error) {
	s := base
	var pendKey, pendVal string // a disk= or net= item and the options after it
	flush := func() error {
		if pendKey == "" {
			return nil
		}
		k, v := pendKey, pendVal
		pendKey, pendVal = "", ""
		return s.set(k, v)
	}
	for rest := spec; rest != ""; {
		var item string
		if strings.HasPrefix(rest, "cmdline=") {
			item, rest = rest, ""
		} else {
			item, rest, _ = strings.Cut(rest, ",")
		}
		key, val, ok := strings.Cut(item, "=")
		switch {
		case pendKey == "disk" && (item == "ro" || ok && (key == "overlay" || slices.Contains(diskKeyOptions, key))), pendKey == "net" && ok && slices.Contains(netOptions, key),
			pendKey == "cpus" && !ok:
			pendVal += "," + item
			continue
		}
		if err := flush(); err != nil {
			return s, fmt.Errorf("--vm %q: %v", spec, err)
		}
		if !ok {
			return s, fmt.Errorf("--vm %q: %q is not key=value", spec, item)
		}
		if key == "disk" || key == "net" || key == "cpus" {
			pendKey, pendVal = key, val
			continue
		}
		if err := s.set(key, val); err != nil {
			return s, fmt.Errorf("--vm %q: %v", spec, err)
		}
	}
	if err := flush(); err != nil {
		return s, fmt.Errorf("--vm %q: %v", spec, err)
	}
	return s, nil
}

// fileConfig is a config file: host settings and a [[vm]] table per VM,
// with the keys of a --vm spec (cpu_weight, cpu_cap and cpus_exclusive
// may be spelled with either - or _); disk and net take a string or a
// list of strings, each as --disk and --net; cpus a string in Linux's
// list syntax, commas included, or one CPU's number; cpus-exclusive a
// boolean. Example:
//
//	workers = 1
//	[[vm]]
//	name = "a"
//	kernel = "build/testguest.elf"
//	cmdline = "spin"
//	cpu-weight = 512
//	disk = ["a.img", "shared.img,ro"]
//	net = "segment=front,bw=10M/s"
//	cpus = "0,2-3"
//	cpus-exclusive = true
type fileConfig struct {
	Workers int              `toml:"workers"`
	VM      []map[string]any `toml:"vm"`
}

// loadConfig reads a config file's VMs over the defaults in base.
func loadConfig(path string, base vmSpec) (workers int, specs []vmSpec, err error) {
	b, err := readFile("config file", path, maxConfigFile)
	if err != nil {
		return 0, nil, err
	}
	var fc fileConfig
	md, err := toml.Decode(string(b), &fc)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %v", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return 0, nil, fmt.Errorf("%s: unknown setting %q: want workers or [[vm]] tables", path, und[0].String())
	}
	if len(fc.VM) == 0 {
		return 0, nil, fmt.Errorf("%s: no [[vm]] table", path)
	}
	for i, t := range fc.VM {
		s := base
		s.name = fmt.Sprintf("vm%d", i)
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys) // a map's order is random; messages and device order should not be
		for _, k := range keys {
			var vals []string
			switch v := t[k].(type) {
			case string:
				vals = []string{v}
			case int64:
				vals = []string{strconv.FormatInt(v, 10)}
			case bool:
				vals = []string{strconv.FormatBool(v)}
			case []any:
				if k != "disk" && k != "net" {
					return 0, nil, fmt.Errorf("%s: vm %d: %s: want a string or an integer, not a list (only disk and net take lists)", path, i, k)
				}
				for _, e := range v {
					str, ok := e.(string)
					if !ok {
						return 0, nil, fmt.Errorf("%s: vm %d: %s: want a list of strings, not one holding %T", path, i, k, e)
					}
					vals = append(vals, str)
				}
			default:
				return 0, nil, fmt.Errorf("%s: vm %d: %s: want a string, an integer or a boolean, not %T", path, i, k, v)
			}
			for _, val := range vals {
				if err := s.set(k, val); err != nil {
					return 0, nil, fmt.Errorf("%s: vm %d: %v", path, i, err)
				}
			}
		}
		specs = append(specs, s)
	}
	if err := checkWorkers(fc.Workers); err != nil {
		return 0, nil, fmt.Errorf("%s: workers = %v", path, err)
	}
	return fc.Workers, specs, nil
}

// checkSpecs validates finished specs: names are unique, and each file
// is a regular file that fits in its VM's memory.
func checkSpecs(specs []vmSpec) error {
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s.name] {
			return fmt.Errorf("two VMs are named %q", s.name)
		}
		seen[s.name] = true
		if s.kernel == "" {
			return errors.New("no kernel given: pass --kernel FILE (or kernel= in a VM spec)")
		}
		if err := statFile("kernel", s.kernel, s.memBytes); err != nil {
			return fmt.Errorf("%s: %v", s.name, err)
		}
		if s.initrd != "" {
			if err := statFile("initrd", s.initrd, s.memBytes); err != nil {
				return fmt.Errorf("%s: %v", s.name, err)
			}
		}
		for _, d := range s.disks {
			fi, err := os.Stat(d.Path)
			if err != nil {
				return fmt.Errorf("%s: --disk %s: %v", s.name, d.Path, err)
			}
			if err := checkFile("disk", d.Path, fi, math.MaxUint64); err != nil {
				return fmt.Errorf("%s: %v", s.name, err)
			}
		}
	}
	return checkNICs(specs)
}

// parseDisk parses a --disk value:
// PATH[,ro][,overlay=FILE][,bw=BYTES/s][,iops=N/s][,key=FILE|,passphrase=FILE].
// overlay puts a copy-on-write overlay FILE over the image; bw bounds the
// bytes the guest moves per second (a K, M or G suffix), iops its requests
// per second; all optional ("/s" may be left out). key= and passphrase=
// say PATH is an encrypted image (hv/diskcrypt) and name its key file or a
// file whose first line is its passphrase; they are read here.
func parseDisk(v string) (hv.Disk, error) {
	items := strings.Split(v, ",")
	d := hv.Disk{Path: items[0]}
	const want = "want PATH[,ro][,overlay=FILE][,bw=BYTES/s][,iops=N/s][,key=FILE|,passphrase=FILE]"
	seen := map[string]bool{}
	for _, item := range items[1:] {
		key, val, hasVal := strings.Cut(item, "=")
		if seen[key] {
			return d, fmt.Errorf("--disk %s: %s given twice", v, key)
		}
		seen[key] = true
		switch {
		case key == "ro" && !hasVal:
			d.ReadOnly = true
		case key == "bw" && hasVal:
			b, err := parseSize(strings.TrimSuffix(val, "/s"))
			if err != nil || b == 0 {
				return d, fmt.Errorf("--disk %s: bw %q: want a positive size per second, such as bw=10M/s", v, val)
			}
			d.Limits.BytesPerSec = b
		case key == "iops" && hasVal:
			o, err := strconv.ParseUint(strings.TrimSuffix(val, "/s"), 10, 64)
			if err != nil || o == 0 {
				return d, fmt.Errorf("--disk %s: iops %q: want a positive number of requests per second, such as iops=1000/s", v, val)
			}
			d.Limits.OpsPerSec = o
		case (key == "key" || key == "passphrase") && hasVal && val != "":
			if d.Key != nil {
				return d, fmt.Errorf("--disk %s: give key= or passphrase=, not both", v)
			}
			var err error
			if key == "key" {
				d.Key, err = loadKey(val, "")
			} else {
				d.Key, err = loadKey("", val)
			}
			if err != nil {
				return d, fmt.Errorf("--disk %s: %v", v, err)
			}
		case key == "overlay" && hasVal:
			if val == "" {
				return d, fmt.Errorf("--disk %s: overlay=: want the path of the overlay file", v)
			}
			d.Overlay = val
		default:
			return d, fmt.Errorf("--disk %s: unknown option %q: %s", v, item, want)
		}
	}
	if d.Path == "" {
		return d, fmt.Errorf("--disk %q: no path", v)
	}
	if d.Overlay != "" && filepath.Clean(d.Overlay) == filepath.Clean(d.Path) {
		return d, fmt.Errorf("--disk %s: the overlay is the image itself: give the overlay its own file", v)
	}
	return d, nil
}

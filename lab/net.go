package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/deploylab/deploylab/internal/atomicfile"
)

// runDir holds what labs running at once share on this machine: the
// allocation of host subnets. It is on tmpfs, so a reboot frees it all.
var runDir = "/run/deploylab"

// maxSlots bounds the subnets handed out to all labs at once. Slot k is the
// /30 network 10.(77+k/256).(k%256).0: its host side is .1, the lab host .2,
// so lab host N of the first lab on a machine is 10.77.N.2.
const maxSlots = 1023

func slotAddrs(k int) (gateway, address string) {
	a, b := 77+k/256, k%256
	return fmt.Sprintf("10.%d.%d.1", a, b), fmt.Sprintf("10.%d.%d.2", a, b)
}

// slotClaim is what a slot file records: who took the slot, for what.
type slotClaim struct {
	Lab   string `json:"lab"`
	Dir   string `json:"dir"`
	Netns string `json:"netns"`
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

func slotPath(k int) string { return filepath.Join(runDir, "slots", strconv.Itoa(k)) }

// inUse reports whether a claim still holds: the process that made it runs,
// or the network namespace it was for exists (the lab was started and not
// stopped).
func (c slotClaim) inUse() bool {
	if alive(c.PID, c.Start) {
		return true
	}
	if c.Netns == "" {
		return false
	}
	_, err := os.Stat(filepath.Join("/run/netns", c.Netns))
	return err == nil
}

// allocSlot claims a free subnet slot for a host of lab id. Claims whose
// maker died before creating the namespace are taken back.
func allocSlot(ctx context.Context, id, dir, netns string) (int, error) {
	unlock, err := lockFile(ctx, filepath.Join(runDir, "slots.lock"))
	if err != nil {
		return 0, err
	}
	defer unlock()
	if err := os.MkdirAll(filepath.Join(runDir, "slots"), 0o755); err != nil {
		return 0, fmt.Errorf("allocate subnet: %w", err)
	}
	self := os.Getpid()
	for k := 1; k <= maxSlots; k++ {
		p := slotPath(k)
		b, err := os.ReadFile(p)
		if err == nil {
			var c slotClaim
			if json.Unmarshal(b, &c) == nil && c.inUse() {
				continue
			}
		} else if !os.IsNotExist(err) {
			return 0, fmt.Errorf("allocate subnet: %w", err)
		}
		c := slotClaim{Lab: id, Dir: dir, Netns: netns, PID: self, Start: procStart(self)}
		b, _ = json.Marshal(c)
		if err := atomicfile.WriteFile(p, b, 0o644); err != nil {
			return 0, fmt.Errorf("allocate subnet: %w", err)
		}
		return k, nil
	}
	return 0, fmt.Errorf("allocate subnet: all %d lab subnets are in use; stop some labs", maxSlots)
}

// freeSlot releases slot k if lab id still holds it.
func freeSlot(k int, id string) error {
	if k <= 0 {
		return nil
	}
	unlock, err := lockFile(context.Background(), filepath.Join(runDir, "slots.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	b, err := os.ReadFile(slotPath(k))
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("free subnet: %w", err)
	}
	var c slotClaim
	if json.Unmarshal(b, &c) == nil && c.Lab != id {
		return nil // someone else's now
	}
	if err := os.Remove(slotPath(k)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("free subnet: %w", err)
	}
	return nil
}

// makeNet creates the network namespace netns with a veth pair: veth on
// this side with gateway/30, host0 inside with address/30. There is no
// default route: a lab host reaches this machine and nothing else.
func makeNet(ctx context.Context, netns, veth, gateway, address string) error {
	steps := [][]string{
		{"netns", "add", netns},
		{"link", "add", veth, "type", "veth", "peer", "name", "host0", "netns", netns},
		{"addr", "add", gateway + "/30", "dev", veth},
		{"link", "set", veth, "up"},
		{"-n", netns, "addr", "add", address + "/30", "dev", "host0"},
		{"-n", netns, "link", "set", "lo", "up"},
		{"-n", netns, "link", "set", "host0", "up"},
	}
	for _, s := range steps {
		if err := run(ctx, "ip", s...); err != nil {
			return fmt.Errorf("create network: %w", err)
		}
	}
	return nil
}

// removeNet deletes the namespace (which destroys the veth pair) and the
// veth if it is still there.
func removeNet(netns, veth string) error {
	var errs []error
	if netns != "" {
		if _, err := os.Stat(filepath.Join("/run/netns", netns)); err == nil {
			if err := run(context.Background(), "ip", "netns", "delete", netns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if veth != "" {
		// Deleting the namespace destroys the pair, but not at once.
		for i := 0; i < 40 && exists(filepath.Join("/sys/class/net", veth)); i++ {
			time.Sleep(50 * time.Millisecond)
		}
		if exists(filepath.Join("/sys/class/net", veth)) {
			if err := run(context.Background(), "ip", "link", "delete", veth); err != nil && exists(filepath.Join("/sys/class/net", veth)) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

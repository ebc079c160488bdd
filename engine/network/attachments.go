package network

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
)

// attachedContainer is one container in a network's attachment file.
type attachedContainer struct {
	IfName  string   `json:"ifName"`
	IPs     []string `json:"ips"`
	Aliases []string `json:"aliases,omitempty"`
}

// networkAttachments is StateDir/networks/<name>.json: who is on a network.
// It feeds HostsEntries and lets Remove refuse a network in use.
type networkAttachments struct {
	Containers map[string]attachedContainer `json:"containers"`
}

func (m *Manager) attachmentsPath(network string) string {
	return filepath.Join(m.attachmentsDir(), network+".json")
}

// updateAttachments applies fn to a network's attachment file under its
// lock and writes the result atomically (or deletes the file when empty).
func (m *Manager) updateAttachments(network string, fn func(*networkAttachments)) error {
	l, err := lockPath(m.attachmentsPath(network) + ".lock")
	if err != nil {
		return fmt.Errorf("network %q: lock attachments: %w", network, err)
	}
	defer l.unlock()
	var na networkAttachments
	if err := readJSON(m.attachmentsPath(network), &na); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("network %q: %w", network, err)
	}
	if na.Containers == nil {
		na.Containers = map[string]attachedContainer{}
	}
	fn(&na)
	if len(na.Containers) == 0 {
		if err := os.Remove(m.attachmentsPath(network)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("network %q: %w", network, err)
		}
		return nil
	}
	if err := writeJSONAtomic(m.attachmentsPath(network), na); err != nil {
		return fmt.Errorf("network %q: write attachments: %w", network, err)
	}
	return nil
}

func (m *Manager) addAttachment(network, id string, c attachedContainer) error {
	return m.updateAttachments(network, func(na *networkAttachments) { na.Containers[id] = c })
}

func (m *Manager) removeAttachment(network, id string) error {
	if _, err := os.Stat(m.attachmentsPath(network)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return m.updateAttachments(network, func(na *networkAttachments) { delete(na.Containers, id) })
}

func (m *Manager) readAttachments(network string) (networkAttachments, error) {
	l, err := lockPath(m.attachmentsPath(network) + ".lock")
	if err != nil {
		return networkAttachments{}, fmt.Errorf("network %q: lock attachments: %w", network, err)
	}
	defer l.unlock()
	var na networkAttachments
	if err := readJSON(m.attachmentsPath(network), &na); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return na, fmt.Errorf("network %q: %w", network, err)
	}
	return na, nil
}

// HostsEntries lists the containers attached to network with their
// addresses and aliases, sorted by container ID, for the engine to write
// into each member's /etc/hosts (and rewrite when a member joins or leaves).
// It lists members whatever Network.DNS says; the engine decides whether to
// use them.
func (m *Manager) HostsEntries(network string) ([]HostEntry, error) {
	if err := validateName(network); err != nil {
		return nil, err
	}
	if _, err := os.Stat(m.confPath(network)); err != nil {
		return nil, fmt.Errorf("network %q: %w", network, ErrNotFound)
	}
	na, err := m.readAttachments(network)
	if err != nil {
		return nil, err
	}
	out := make([]HostEntry, 0, len(na.Containers))
	for id, c := range na.Containers {
		for _, s := range c.IPs {
			if ip := net.ParseIP(s); ip != nil {
				out = append(out, HostEntry{ContainerID: id, IP: ip, Names: append([]string(nil), c.Aliases...)})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerID < out[j].ContainerID })
	return out, nil
}

// usersOf returns the IDs of containers attached to network, or in the
// middle of being attached: from its attachment file, from container
// records and from libcni's cache.
func (m *Manager) usersOf(network string) ([]string, error) {
	ids := map[string]bool{}
	na, err := m.readAttachments(network)
	if err != nil {
		return nil, err
	}
	for id := range na.Containers {
		ids[id] = true
	}
	entries, err := os.ReadDir(m.containersDir())
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".json" {
			continue
		}
		var rec containerRecord
		if err := readJSON(filepath.Join(m.containersDir(), e.Name()), &rec); err != nil {
			continue // a torn record cannot exist (atomic writes); a vanished one is fine
		}
		for _, ra := range rec.Attachments {
			if ra.Network == network {
				ids[rec.ID] = true
			}
		}
	}
	cached, err := m.cni.GetCachedAttachments("")
	if err != nil {
		return nil, fmt.Errorf("read CNI cache: %w", err)
	}
	for _, c := range cached {
		if c.Network == network {
			ids[c.ContainerID] = true
		}
	}
	out := make([]string, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

package netops

import (
	"encoding/binary"
	"fmt"
	"net"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ChangeKind is what one IPVS change does.
type ChangeKind uint8

// The IPVS changes Apply takes.
const (
	ChangeAddService ChangeKind = iota
	ChangeUpdateService
	ChangeDelService
	ChangeAddDest
	ChangeUpdateDest
	ChangeDelDest
)

// Change is one IPVS change: Service for the service ones (its key alone for a delete), Key
// and Dest for the destination ones (the DestKey alone for a delete).
type Change struct {
	Kind    ChangeKind
	Service Service
	Key     ServiceKey
	Dest    Destination
}

// applyOne applies c through the single-request methods of i.
func applyOne(i IPVS, c Change) error {
	switch c.Kind {
	case ChangeAddService:
		return i.AddService(c.Service)
	case ChangeUpdateService:
		return i.UpdateService(c.Service)
	case ChangeDelService:
		return i.DelService(c.Service.ServiceKey)
	case ChangeAddDest:
		return i.AddDestination(c.Key, c.Dest)
	case ChangeUpdateDest:
		return i.UpdateDestination(c.Key, c.Dest)
	case ChangeDelDest:
		return i.DelDestination(c.Key, c.Dest.DestKey)
	}
	return fmt.Errorf("unknown IPVS change kind %d", c.Kind)
}

// Apply applies changes in order, each as its single-request method would, and returns one
// error per change (nil where it took). The fake has no batches: the semantics are the kernel
// batch's (see KernelIPVS.Apply), which are those of the changes one by one.
func (f *FakeIPVS) Apply(changes []Change) []error {
	errs := make([]error, len(changes))
	for i, c := range changes {
		errs[i] = applyOne(f, c)
	}
	return errs
}

// IPVS generic netlink: commands, attributes and the family's version (include/uapi/linux/
// ip_vs.h). moby/ipvs has them too, unexported.
const (
	ipvsGenlVersion = 1

	ipvsCmdNewService = 1
	ipvsCmdSetService = 2
	ipvsCmdDelService = 3
	ipvsCmdNewDest    = 5
	ipvsCmdSetDest    = 6
	ipvsCmdDelDest    = 7

	ipvsCmdAttrService = 1
	ipvsCmdAttrDest    = 2

	ipvsSvcAttrAF        = 1
	ipvsSvcAttrProtocol  = 2
	ipvsSvcAttrAddr      = 3
	ipvsSvcAttrPort      = 4
	ipvsSvcAttrSchedName = 6
	ipvsSvcAttrFlags     = 7
	ipvsSvcAttrTimeout   = 8
	ipvsSvcAttrNetmask   = 9

	ipvsDestAttrAddr      = 1
	ipvsDestAttrPort      = 2
	ipvsDestAttrFwdMethod = 3
	ipvsDestAttrWeight    = 4
	ipvsDestAttrUThresh   = 5
	ipvsDestAttrLThresh   = 6
)

// batchSize is the most changes one write carries. The kernel handles every message of a
// write in the writer's own sendmsg (genl_rcv runs synchronously in netlink_unicast) and acks
// only the failures and the last message; 256 messages of about 100 bytes stay far below the
// socket's send buffer, and 256 capped error acks (NETLINK_CAP_ACK: 36 bytes each) below its
// receive buffer.
const batchSize = 256

// ipvsBatcher writes IPVS changes many per sendmsg on a generic netlink socket of its own.
type ipvsBatcher struct {
	s      *nl.NetlinkSocket
	family uint16
}

// newIPVSBatcher opens a generic netlink socket in the namespace at path ("" the current one)
// and resolves the IPVS family there.
func newIPVSBatcher(path string) (*ipvsBatcher, error) {
	ns, err := netnsAt(path)
	if err != nil {
		return nil, err
	}
	defer closeNetns(ns)
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("generic netlink: %w", err)
	}
	fam, err := h.GenlFamilyGet("IPVS")
	h.Close()
	if err != nil {
		return nil, fmt.Errorf("resolve the IPVS generic netlink family: %w", err)
	}
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("generic netlink socket: %w", err)
	}
	// Error acks without the request copied in: a batch's failures then fit the buffer.
	if err := unix.SetsockoptInt(s.GetFd(), unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1); err != nil {
		s.Close()
		return nil, fmt.Errorf("NETLINK_CAP_ACK: %w", err)
	}
	// A lost ack must not hang a sync: the kernel answers within the sendmsg.
	if err := s.SetReceiveTimeout(&unix.Timeval{Sec: 30}); err != nil {
		s.Close()
		return nil, err
	}
	return &ipvsBatcher{s: s, family: fam.ID}, nil
}

func (b *ipvsBatcher) close() { b.s.Close() }

// netnsAt opens the network namespace at path; "" is the current one (netns.None).
func netnsAt(path string) (netns.NsHandle, error) {
	if path == "" {
		return netns.None(), nil
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return netns.None(), fmt.Errorf("open network namespace %s: %w", path, err)
	}
	return ns, nil
}

func closeNetns(ns netns.NsHandle) {
	if ns.IsOpen() {
		ns.Close()
	}
}

// Apply applies changes in order, up to batchSize per write, and returns one error per change
// (nil where it took), classified as the single-request methods classify them. A change that
// fails validation is not sent. The kernel handles the messages of a write one after the
// other and goes on after a failure, as the changes one by one would (a destination added to
// a service whose addition failed fails with it).
func (k *KernelIPVS) Apply(changes []Change) []error {
	errs := make([]error, len(changes))
	k.mu.Lock()
	defer k.mu.Unlock()
	for start := 0; start < len(changes); start += batchSize {
		end := min(start+batchSize, len(changes))
		k.applyBatch(changes[start:end], errs[start:end])
	}
	return errs
}

func (k *KernelIPVS) applyBatch(changes []Change, errs []error) {
	var buf []byte
	seqs := map[uint32]int{} // sequence number → index in changes
	last := -1
	for i, c := range changes {
		if err := checkChange(c); err != nil {
			errs[i] = err
			continue
		}
		last = i
	}
	for i, c := range changes {
		if errs[i] != nil {
			continue
		}
		flags := 0
		if i == last {
			flags = unix.NLM_F_ACK // the write's end: its ack says every message was handled
		}
		req := nl.NewNetlinkRequest(int(k.batch.family), flags)
		req.AddData(genlHeader{cmd: changeCmd(c.Kind), version: ipvsGenlVersion})
		addChangeAttrs(req, c)
		seqs[req.Seq] = i
		buf = append(buf, req.Serialize()...)
	}
	if last < 0 {
		return
	}
	k.requests.Add(int64(len(seqs)))
	fail := func(err error) {
		for seq, i := range seqs {
			if errs[i] == nil {
				errs[i] = changeError(changes[i], err)
			}
			delete(seqs, seq)
		}
	}
	if err := unix.Sendto(k.batch.s.GetFd(), buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		fail(fmt.Errorf("send IPVS batch: %w", err))
		return
	}
	lastSeq := uint32(0)
	for seq, i := range seqs {
		if i == last {
			lastSeq = seq
		}
	}
	for {
		msgs, _, err := k.batch.s.Receive()
		if err != nil {
			fail(fmt.Errorf("read IPVS batch acks: %w", err))
			return
		}
		for _, m := range msgs {
			i, ok := seqs[m.Header.Seq]
			if !ok || m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue // not ours (a late answer of an earlier batch)
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
				errs[i] = changeError(changes[i], syscall.Errno(-code))
			}
			if m.Header.Seq == lastSeq {
				// Everything before it was handled in the same sendmsg; only failures were
				// acked, and they came first.
				return
			}
		}
	}
}

// genlHeader is struct genlmsghdr: command, version, two reserved bytes.
type genlHeader struct{ cmd, version uint8 }

func (h genlHeader) Len() int          { return 4 }
func (h genlHeader) Serialize() []byte { return []byte{h.cmd, h.version, 0, 0} }

func changeCmd(k ChangeKind) uint8 {
	switch k {
	case ChangeAddService:
		return ipvsCmdNewService
	case ChangeUpdateService:
		return ipvsCmdSetService
	case ChangeDelService:
		return ipvsCmdDelService
	case ChangeAddDest:
		return ipvsCmdNewDest
	case ChangeUpdateDest:
		return ipvsCmdSetDest
	}
	return ipvsCmdDelDest
}

// checkChange is the validation the single-request methods do before they ask the kernel.
func checkChange(c Change) error {
	switch c.Kind {
	case ChangeAddService, ChangeUpdateService:
		return checkService(c.Service)
	case ChangeDelService:
		return checkServiceKey(c.Service.ServiceKey)
	case ChangeAddDest, ChangeUpdateDest:
		return checkDest(c.Key, c.Dest)
	case ChangeDelDest:
		return checkDestKey(c.Key, c.Dest.DestKey)
	}
	return fmt.Errorf("unknown IPVS change kind %d", c.Kind)
}

// changeError words a kernel error as the single-request method for c does.
func changeError(c Change, err error) error {
	switch c.Kind {
	case ChangeAddService:
		return kernelError(err, "add service %s", fmtService(c.Service))
	case ChangeUpdateService:
		return kernelError(err, "update service %s", fmtService(c.Service))
	case ChangeDelService:
		return kernelError(err, "delete service %s", c.Service.ServiceKey)
	case ChangeAddDest:
		return kernelError(err, "add destination %s to service %s", fmtDestOnly(c.Dest), c.Key)
	case ChangeUpdateDest:
		return kernelError(err, "update destination %s of service %s", fmtDestOnly(c.Dest), c.Key)
	}
	return kernelError(err, "delete destination %s of service %s", c.Dest.DestKey, c.Key)
}

// addChangeAttrs adds c's attributes as moby/ipvs encodes the same request (so the kernel
// holds exactly what the single-request methods would have programmed): the service always,
// with scheduler, flags (mask all ones), timeout 0 and netmask (see toIPVSService); the
// destination for the destination changes, with its forwarding method, weight and thresholds.
func addChangeAttrs(req *nl.NetlinkRequest, c Change) {
	svc := c.Service
	if c.Kind >= ChangeAddDest {
		svc = Service{ServiceKey: c.Key}
	}
	m := toIPVSService(svc)
	sa := nl.NewRtAttr(ipvsCmdAttrService, nil)
	sa.AddRtAttr(ipvsSvcAttrAF, nl.Uint16Attr(m.AddressFamily))
	sa.AddRtAttr(ipvsSvcAttrProtocol, nl.Uint16Attr(m.Protocol))
	sa.AddRtAttr(ipvsSvcAttrAddr, rawIP(m.Address))
	sa.AddRtAttr(ipvsSvcAttrPort, binary.BigEndian.AppendUint16(nil, m.Port))
	sa.AddRtAttr(ipvsSvcAttrSchedName, nl.ZeroTerminated(m.SchedName))
	flags := binary.NativeEndian.AppendUint32(nil, m.Flags)
	sa.AddRtAttr(ipvsSvcAttrFlags, binary.NativeEndian.AppendUint32(flags, 0xffffffff))
	sa.AddRtAttr(ipvsSvcAttrTimeout, nl.Uint32Attr(m.Timeout))
	sa.AddRtAttr(ipvsSvcAttrNetmask, nl.Uint32Attr(m.Netmask))
	req.AddData(sa)
	if c.Kind < ChangeAddDest {
		return
	}
	d := toIPVSDest(c.Dest)
	da := nl.NewRtAttr(ipvsCmdAttrDest, nil)
	da.AddRtAttr(ipvsDestAttrAddr, rawIP(d.Address))
	da.AddRtAttr(ipvsDestAttrPort, binary.BigEndian.AppendUint16(nil, d.Port))
	da.AddRtAttr(ipvsDestAttrFwdMethod, nl.Uint32Attr(d.ConnectionFlags))
	da.AddRtAttr(ipvsDestAttrWeight, nl.Uint32Attr(uint32(d.Weight)))
	da.AddRtAttr(ipvsDestAttrUThresh, nl.Uint32Attr(d.UpperThreshold))
	da.AddRtAttr(ipvsDestAttrLThresh, nl.Uint32Attr(d.LowerThreshold))
	req.AddData(da)
}

// rawIP is an address as moby/ipvs sends it: 4 bytes for IPv4 (the kernel copies what it is
// given into its 16-byte union), 16 for IPv6.
func rawIP(ip net.IP) []byte {
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip
}

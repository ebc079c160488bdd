package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hull-runtime/hull/engine"
	"github.com/hull-runtime/hull/engine/network"
)

// volumeInUse reports whether a container mounts the named volume.
func volumeInUse(e *engine.Engine) func(string) bool {
	list, _, _ := e.Containers.List()
	used := map[string]bool{}
	for _, c := range list {
		if o, err := optionsOf(c); err == nil {
			for _, v := range append(o.NamedVolumes, o.AnonymousVolumes...) {
				used[v] = true
			}
		}
	}
	return func(n string) bool { return used[n] }
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}

func newVolumeCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "manage volumes"}
	var labels []string
	create := &cobra.Command{Use: "create [NAME]", Short: "create a volume", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			v, err := e.Volumes.Create(name, kvMap(labels))
			if err != nil {
				return err
			}
			fmt.Println(v.Name)
			return nil
		}}
	create.Flags().StringArrayVarP(&labels, "label", "l", nil, "label K=V")
	var quiet bool
	ls := &cobra.Command{Use: "ls", Aliases: []string{"list"}, Short: "list volumes", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			vols, err := e.Volumes.List()
			if err != nil {
				return err
			}
			if quiet {
				for _, v := range vols {
					fmt.Println(v.Name)
				}
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
			for _, v := range vols {
				fmt.Fprintf(tw, "%s\t%s\n", v.Driver, v.Name)
			}
			return tw.Flush()
		}}
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "only names")
	inspect := &cobra.Command{Use: "inspect VOLUME...", Short: "show volumes as JSON", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			var out []any
			for _, a := range args {
				v, err := e.Volumes.Get(a)
				if err != nil {
					return err
				}
				out = append(out, v)
			}
			return printJSON(out)
		}}
	var force bool
	rm := &cobra.Command{Use: "rm VOLUME...", Aliases: []string{"remove"}, Short: "remove volumes", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			inUse := volumeInUse(e)
			for _, a := range args {
				if err := e.Volumes.Remove(a, force, inUse); err != nil {
					return err
				}
				fmt.Println(a)
			}
			return nil
		}}
	rm.Flags().BoolVarP(&force, "force", "f", false, "remove volumes in use")
	var all, yes bool
	prune := &cobra.Command{Use: "prune", Short: "remove unused anonymous volumes (all unused with --all)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			removed, err := e.Volumes.Prune(all, volumeInUse(e))
			for _, r := range removed {
				fmt.Println(r)
			}
			return err
		}}
	prune.Flags().BoolVarP(&all, "all", "a", false, "also named volumes")
	prune.Flags().BoolVarP(&yes, "force", "f", false, "do not ask")
	cmd.AddCommand(create, ls, inspect, rm, prune)
	return cmd
}

func newNetworkCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "manage networks"}
	var subnet, gateway string
	var internal bool
	var labels []string
	create := &cobra.Command{Use: "create [flags] NAME", Short: "create a bridge network", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			n, err := e.Network.Create(network.Network{Name: args[0], Subnet: subnet, Gateway: gateway, Internal: internal, Labels: kvMap(labels)})
			if err != nil {
				return err
			}
			fmt.Println(n.ID)
			return nil
		}}
	create.Flags().StringVar(&subnet, "subnet", "", "IPv4 subnet (default: the next free /24 of 10.89.0.0/16)")
	create.Flags().StringVar(&gateway, "gateway", "", "gateway address")
	create.Flags().BoolVar(&internal, "internal", false, "no route out")
	create.Flags().StringArrayVarP(&labels, "label", "l", nil, "label K=V")
	ls := &cobra.Command{Use: "ls", Aliases: []string{"list"}, Short: "list networks", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			if _, err := e.Network.EnsureDefault(); err != nil {
				return err
			}
			nets, err := e.Network.List()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tSUBNET")
			for _, n := range nets {
				id := n.ID
				if len(id) > 12 {
					id = id[:12]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id, n.Name, n.Driver, n.Subnet)
			}
			return tw.Flush()
		}}
	inspect := &cobra.Command{Use: "inspect NETWORK...", Short: "show networks as JSON", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			var out []any
			for _, a := range args {
				n, err := e.Network.Inspect(a)
				if err != nil {
					return err
				}
				out = append(out, n)
			}
			return printJSON(out)
		}}
	rm := &cobra.Command{Use: "rm NETWORK...", Aliases: []string{"remove"}, Short: "remove networks", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, done, err := g.Engine(nil)
			if err != nil {
				return err
			}
			defer done()
			for _, a := range args {
				if err := e.Network.Remove(a); err != nil {
					return err
				}
				fmt.Println(a)
			}
			return nil
		}}
	cmd.AddCommand(create, ls, inspect, rm)
	return cmd
}

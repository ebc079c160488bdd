package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/hull-runtime/hull/image"
)

func newPullCommand(g *globals) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull [flags] IMAGE",
		Short: "pull an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var progress io.Writer = os.Stderr
			if quiet {
				progress = nil
			}
			s, err := g.Images(progress)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := s.Pull(cmd.Context(), args[0], image.PullOptions{})
			if err != nil {
				return err
			}
			if quiet {
				fmt.Println(res.Config.Digest.Encoded())
				return nil
			}
			fmt.Fprintf(os.Stderr, "Digest: %s\n", res.Image.Target.Digest)
			fmt.Println(res.Image.Name)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress; print the image id")
	return cmd
}

func newImagesCommand(g *globals) *cobra.Command {
	var quiet, digests, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:     "images [flags] [REFERENCE]",
		Aliases: []string{"list", "ls"},
		Short:   "list images",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.Images(nil)
			if err != nil {
				return err
			}
			defer s.Close()
			list, err := s.List()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				var keep []image.Summary
				for _, sum := range list {
					if matchRepo(sum, args[0]) {
						keep = append(keep, sum)
					}
				}
				list = keep
			}
			return printImages(os.Stdout, list, quiet, digests, noTrunc, format)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "only image ids")
	f.BoolVar(&digests, "digests", false, "show digests")
	f.BoolVar(&noTrunc, "no-trunc", false, "do not truncate ids")
	f.StringVar(&format, "format", "", "Go template for each image ({{.Repository}} {{.Tag}} {{.ID}} {{.Digest}} {{.CreatedSince}} {{.CreatedAt}} {{.Size}}), or json")
	return cmd
}

// matchRepo filters `hull images REF`: a repository (any tag) or a name.
func matchRepo(sum image.Summary, arg string) bool {
	if sum.Name == arg || sum.Ref.Familiar() == arg {
		return true
	}
	repo := sum.Ref.Domain() + "/" + sum.Ref.Repository()
	fam := strings.SplitN(sum.Ref.Familiar(), ":", 2)[0]
	return arg == repo || arg == fam || strings.TrimPrefix(repo, "docker.io/library/") == arg
}

// imageRow is what --format templates see, with Docker's field names.
type imageRow struct {
	Repository, Tag, ID, Digest, CreatedSince, CreatedAt, Size string
}

func rowOf(sum image.Summary, noTrunc bool) imageRow {
	repo, tag := "<none>", "<none>"
	if sum.Name != "" {
		fam := sum.Ref.Familiar()
		if i := strings.LastIndex(fam, ":"); i > strings.LastIndex(fam, "/") {
			repo, tag = fam[:i], fam[i+1:]
		} else {
			repo = fam
		}
	}
	id := sum.ID.Encoded()
	if !noTrunc && len(id) > 12 {
		id = id[:12]
	} else if noTrunc {
		id = sum.ID.String()
	}
	created := "N/A"
	since := "N/A"
	if !sum.Created.IsZero() {
		created = sum.Created.Format("2006-01-02 15:04:05 -0700 MST")
		since = humanSince(sum.Created)
	}
	return imageRow{Repository: repo, Tag: tag, ID: id, Digest: sum.Target.Digest.String(), CreatedSince: since, CreatedAt: created, Size: humanSize(sum.Size)}
}

func printImages(w io.Writer, list []image.Summary, quiet, digests, noTrunc bool, format string) error {
	if quiet {
		seen := map[string]bool{}
		for _, sum := range list {
			id := rowOf(sum, noTrunc).ID
			if !seen[id] {
				seen[id] = true
				fmt.Fprintln(w, id)
			}
		}
		return nil
	}
	switch format {
	case "json":
		rows := make([]imageRow, 0, len(list))
		for _, sum := range list {
			rows = append(rows, rowOf(sum, noTrunc))
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "":
	default:
		t, err := template.New("format").Parse(strings.TrimPrefix(format, "table ") + "\n")
		if err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		for _, sum := range list {
			if err := t.Execute(w, rowOf(sum, noTrunc)); err != nil {
				return fmt.Errorf("--format: %w", err)
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	if digests {
		fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE")
	} else {
		fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
	}
	for _, sum := range list {
		r := rowOf(sum, noTrunc)
		if digests {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.Digest, r.ID, r.CreatedSince, r.Size)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size)
		}
	}
	return tw.Flush()
}

func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	v := float64(n)
	for _, u := range []string{"kB", "MB", "GB", "TB"} {
		v /= unit
		if v < unit {
			return fmt.Sprintf("%.3g%s", v, u)
		}
	}
	return fmt.Sprintf("%.3gPB", v/unit)
}

func humanSince(t time.Time) string { return humanDuration(time.Since(t)) + " ago" }

// humanDuration words a duration as Docker does ("Less than a second",
// "3 seconds", "About a minute", "2 hours", ...).
func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	switch m := int(d.Minutes()); {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	switch h := int(d.Hours() + 0.5); {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	default:
		return fmt.Sprintf("%d years", int(d.Hours())/24/365)
	}
}

func newImageCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "manage images"}
	inspect := &cobra.Command{
		Use:   "inspect IMAGE...",
		Short: "show images' configuration as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.Images(nil)
			if err != nil {
				return err
			}
			defer s.Close()
			var out []*image.Inspect
			for _, a := range args {
				i, err := s.InspectImage(a)
				if err != nil {
					return err
				}
				out = append(out, i)
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "    ")
			return enc.Encode(out)
		},
	}
	prune := newImagePruneCommand(g)
	mount := &cobra.Command{
		Use:   "mount IMAGE",
		Short: "mount an image's root filesystem read-only and print where",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.Images(nil)
			if err != nil {
				return err
			}
			defer s.Close()
			dir, err := s.MountImage(cmd.Context(), args[0], g.Runroot)
			if err != nil {
				return err
			}
			fmt.Println(dir)
			return nil
		},
	}
	unmount := &cobra.Command{
		Use:     "unmount IMAGE",
		Aliases: []string{"umount"},
		Short:   "unmount an image mounted with `hull image mount`",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.Images(nil)
			if err != nil {
				return err
			}
			defer s.Close()
			return s.UnmountImage(cmd.Context(), args[0], g.Runroot)
		},
	}
	cmd.AddCommand(mount, unmount)
	cmd.AddCommand(inspect, prune, newPullCommand(g), newPushCommand(g), newTagCommand(g), newSaveCommand(g), newLoadCommand(g), newImportCommand(g))
	ls := newImagesCommand(g)
	ls.Use, ls.Aliases = "ls [flags] [REFERENCE]", []string{"list"}
	rm := newRmiCommand(g)
	rm.Use, rm.Aliases = "rm [flags] IMAGE...", nil
	cmd.AddCommand(ls, rm)
	return cmd
}

func newTagCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET...",
		Short: "give an image more names",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.Images(nil)
			if err != nil {
				return err
			}
			defer s.Close()
			for _, dst := range args[1:] {
				if _, err := s.Tag(args[0], dst); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func newRmiCommand(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [flags] IMAGE...",
		Short: "remove images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.Images(nil)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := s.Remove(cmd.Context(), args, force, nil)
			for _, n := range res.Untagged {
				fmt.Println("Untagged:", n)
			}
			for _, e := range res.GC.Errors {
				fmt.Fprintln(os.Stderr, "warning:", e)
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove every name of an image id, and images containers use")
	return cmd
}

func newImagePruneCommand(g *globals) *cobra.Command {
	var all, yes bool
	cmd := &cobra.Command{
		Use:   "prune [flags]",
		Short: "remove unused image data (with --all, every image no container uses)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.Images(nil)
			if err != nil {
				return err
			}
			defer s.Close()
			return prune(cmd, s, all, yes)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all images no container uses, not only unreferenced data")
	cmd.Flags().BoolVarP(&yes, "force", "f", false, "do not ask for confirmation")
	return cmd
}

func prune(cmd *cobra.Command, s *image.Service, all, yes bool) error {
	if !yes && isTTY(os.Stdin) {
		fmt.Fprint(os.Stderr, "This removes unused image data (all unused images with --all). Continue? [y/N] ")
		var ans string
		fmt.Scanln(&ans)
		if ans != "y" && ans != "Y" && ans != "yes" {
			return nil
		}
	}
	if all {
		list, err := s.List()
		if err != nil {
			return err
		}
		var names []string
		for _, sum := range list {
			names = append(names, sum.Name)
		}
		if len(names) > 0 {
			res, err := s.Remove(cmd.Context(), names, false, nil)
			for _, n := range res.Untagged {
				fmt.Println("Untagged:", n)
			}
			if err != nil {
				return err
			}
		}
	}
	rep, err := s.GC(cmd.Context(), image.GCOptions{Ingests: true})
	for _, e := range rep.Errors {
		fmt.Fprintln(os.Stderr, "warning:", e)
	}
	if err != nil {
		return err
	}
	fmt.Printf("Total reclaimed space: %s (%d blobs, %d snapshots, %d partial downloads)\n", humanSize(rep.BytesFreed), rep.BlobsRemoved, rep.SnapshotsRemoved, rep.IngestsRemoved)
	return nil
}

